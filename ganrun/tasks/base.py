"""The task interface the runner drives, after the phases of NVIDIA's StyleGAN3 ``loss.py``, and
what a task hands over after training (``inference()``, see ``ganrun.inference.model``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

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
    stop: int | None = None  # the last batch it is due at (None: to the end)

    def due(self, batch: int) -> bool:
        return batch >= self.start and (batch - self.start) % self.interval == 0 and \
            (self.stop is None or batch <= self.stop)


@dataclass(frozen=True)
class Step:
    """What a task may know of the run at an update: the number of this batch (from 1), the
    iterations completed, the updates of each phase so far (a read-only view, counting the
    phases of this batch that ran before), and the number of processes (DDP)."""

    batch: int = 1
    iteration: int = 0
    counters: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    world_size: int = 1

    def updates(self, phase: str) -> int:
        return self.counters.get(phase, 0)


class Task(nn.Module):
    """Base class. Subclasses set ``self.nets`` (an ``nn.ModuleDict``), and implement
    ``players``, ``phases``, ``phase_loss`` and ``inference``; everything a task keeps
    (networks, EMA copies, image pools, fixed inputs) is a submodule or buffer, so checkpoints
    hold it.

    ``iteration_phase`` names the phase whose update completes an iteration: the run length,
    the checkpoint cadence and the x-axis of every log count those.
    """

    iteration_phase = "G"
    # What the batches before the first iteration do (a D warm-up, a text encoder's training),
    # shown as their own progress row.
    warmup_name = "Warm-up (D only)"
    nets: nn.ModuleDict

    def players(self) -> dict[str, list[str]]:
        """Player name -> the networks (keys of ``nets``) its optimizer steps, in the order
        the optimizers are created (and saved)."""
        raise NotImplementedError

    def optimizer_config(self, player: str) -> str:
        """Which node of the ``optimizer`` config builds ``player``'s optimizer."""
        return {"G": "generator", "D": "discriminator"}[player]

    def own_optimizer(self, player: str):
        """A factory ``params -> optimizer`` for a player the ``optimizer`` config does not
        cover (e.g. a text encoder's), else None."""
        return None

    def phases(self) -> list[Phase]:
        """The update phases, in the order they run within a batch."""
        raise NotImplementedError

    def begin_batch(self, batch, step: Step) -> Any:
        """Called once per batch before its phases: what the phases receive as ``batch``
        (e.g. the degraded inputs of paired data, or an object the generator phase leaves its
        fakes in for the discriminator phase). State between the phases of one batch lives in
        what this returns, never on the task."""
        return batch

    def phase_loss(self, phase: Phase, batch, step: Step) -> tuple[torch.Tensor, dict]:
        """The loss to minimize for ``phase`` on ``batch`` and the stats to log (detached)."""
        raise NotImplementedError

    def after_update(self, phase: Phase, batch, step: Step) -> None:
        """Called after ``phase``'s optimizer step (constraints, EMA)."""

    def prepare(self, datamodule) -> None:
        """Called before training with the data: e.g. to take fixed test inputs from it."""

    def compile_units(self) -> dict[str, nn.Module]:
        """The modules ``trainer.compile`` and ``trainer.cuda_graphs`` compile, by name: the
        ones the phases call. By default each network of ``nets``; a task that calls parts of
        a network (StyleGAN2: the generator's mapping and synthesis) names those parts."""
        return dict(self.nets.items())

    def warmup_batches(self) -> int:
        """Batches before the iteration phase first runs (not counted by trainer.max_steps)."""
        phase = next(p for p in self.phases() if p.name == self.iteration_phase)
        return max(0, phase.start - 1)

    def player_parameters(self, player: str):
        return [p for name in self.players()[player] for p in self.nets[name].parameters()]

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """The images of the training sample grid, in [-1, 1], ``nrow`` per row."""
        raise NotImplementedError

    def inference(self):
        """What this task can do after training (a ``ganrun.inference.model.Inference``),
        wrapping the networks it samples or translates with (the EMA copy where there is one),
        not copies: the metrics during training read it."""
        raise NotImplementedError


def graph_safe(output: torch.Tensor) -> torch.Tensor:
    """A network output that the phase reads after a later network call: a copy of its own.

    Under ``trainer.cuda_graphs`` a compiled network writes its outputs into memory that the
    next step of inductor's CUDA graph tree reuses, and a new step starts at any compiled call
    that no pending backward holds back (after a no-grad call, or once a backward ran): a
    generator's no-grad fakes are overwritten by the discriminator's first call on reals.
    Copying costs one device copy of the tensor; the copy keeps autograd's history."""
    return output.clone()


def batch_size(batch) -> int:
    """Images per domain in a batch: ``(images, labels)`` or a dict of domains (``"A"``...)."""
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(first)
