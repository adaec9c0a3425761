"""The task interface the runner drives, after the phases of NVIDIA's StyleGAN3 ``loss.py``."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Phase:
    """One kind of update: ``player``'s optimizer steps on this phase's loss on batches
    ``start``, ``start + interval``, ... (batches counted from 1 over the whole run)."""

    name: str
    player: str
    interval: int = 1
    start: int = 1

    def due(self, batch: int) -> bool:
        return batch >= self.start and (batch - self.start) % self.interval == 0


class Task(nn.Module):
    """Base class. Subclasses set ``self.nets`` (an ``nn.ModuleDict``), and implement
    ``players``, ``phases`` and ``phase_loss``; everything a task keeps (networks, EMA copies,
    image pools, fixed inputs) is a submodule or buffer, so checkpoints hold it.

    ``iteration_phase`` names the phase whose update completes an iteration: the run length,
    the checkpoint cadence and the x-axis of every log count those.
    """

    iteration_phase = "G"
    nets: nn.ModuleDict

    def players(self) -> dict[str, list[str]]:
        """Player name -> the networks (keys of ``nets``) its optimizer steps, in the order
        the optimizers are created (and saved)."""
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        """The update phases, in the order they run within a batch."""
        raise NotImplementedError

    def phase_loss(self, phase: Phase, batch, runner) -> tuple[torch.Tensor, dict]:
        """The loss to minimize for ``phase`` on ``batch`` and the stats to log (detached).
        ``runner`` gives the counters (``runner.counters``), device and world size."""
        raise NotImplementedError

    def prepare(self, datamodule) -> None:
        """Called before training with the data: e.g. to take fixed test inputs from it."""

    def after_update(self, phase: Phase, batch, runner) -> None:
        """Called after ``phase``'s optimizer step (constraints, EMA)."""

    def player_parameters(self, player: str):
        return [p for name in self.players()[player] for p in self.nets[name].parameters()]

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """The images of the training sample grid, in [-1, 1], ``nrow`` per row."""
        raise NotImplementedError

    def metric_generator(self):
        """``n -> n images in [-1, 1]`` for the metrics group."""
        raise NotImplementedError


def batch_size(batch) -> int:
    """Images per domain in a batch: ``(images, labels)`` or a dict of domains (``"A"``...)."""
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(first)
