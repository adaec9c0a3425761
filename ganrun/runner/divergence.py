"""What a run does when a loss or a gradient stops being finite (the ``divergence`` group).

The module never applies an update whose loss or gradient is NaN or infinite; the policy
decides what happens next.
"""

import logging
import math
from pathlib import Path

from ganrun.runner.checkpoints import read_checkpoint, run_state
from ganrun.errors import UserError

log = logging.getLogger("ganrun")


class Diverged(UserError):
    """Training produced a non-finite loss or gradient and the policy stops the run."""


class DivergencePolicy:
    """Decides what non-finite updates (``ganrun.runner.health.Event``) lead to. The updates
    themselves were already skipped on the device; the runner reads what happened at the
    logging cadence and before each checkpoint, and calls ``handle`` then, outside any update,
    where a policy may change weights. Weights that grew past ``max_weight`` (in absolute
    value; finite but blown up, e.g. by a huge learning rate) are a divergence too."""

    max_weight: float = 1e6

    def __init__(self, max_weight: float = 1e6):
        if not 0 < max_weight < math.inf:
            raise UserError(f"divergence.max_weight must be a positive finite number, got "
                            f"{max_weight}.")
        self.max_weight = max_weight

    def handle(self, module, event) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, float]:
        return {}


class Stop(DivergencePolicy):
    """Stop with a message naming the iteration and the loss; keep the last good checkpoint."""

    def handle(self, module, event):
        raise Diverged(stop_message(module, event))


class Skip(DivergencePolicy):
    """Skip the update and go on; the number of skipped updates is logged. A run whose every
    update was skipped for ``max_skipped_in_a_row`` updates cannot recover: it stops as
    diverged (not "finished"). Weights that grew past ``max_weight`` came from updates already
    applied, which skipping cannot undo: the run stops too (divergence=rollback can)."""

    def __init__(self, max_weight: float = 1e6, max_skipped_in_a_row: int = 100):
        super().__init__(max_weight)
        if max_skipped_in_a_row < 1:
            raise UserError(f"divergence.max_skipped_in_a_row must be at least 1, got "
                            f"{max_skipped_in_a_row}.")
        self.max_skipped_in_a_row = max_skipped_in_a_row
        self.skipped = 0
        self.in_a_row = 0

    def handle(self, module, event):
        if event.weight is not None:
            raise Diverged(stop_message(module, event) + " Skipping updates cannot undo "
                           "weights already grown; divergence=rollback reloads them.")
        self.skipped += event.count
        self.in_a_row = self.in_a_row + event.count if event.all_skipped else 0
        log.warning("Skipped %d update(s) (the first at iteration %d: %s)", event.count,
                    event.iteration, event.describe())
        if self.in_a_row >= self.max_skipped_in_a_row:
            raise Diverged(f"Every update since iteration {event.iteration} was skipped "
                           f"({self.in_a_row} in a row, the first: {event.describe()}): the run "
                           f"cannot recover, so it stopped as diverged. {kept(module)} Lower "
                           "the learning rate (optimizer.lr=...), or choose "
                           "divergence=rollback.")

    def stats(self):
        return {"divergence/skipped": float(self.skipped)}


class Rollback(DivergencePolicy):
    """Reload the last good checkpoint's weights and optimizer states, multiply the learning
    rates by ``lr_factor``, and go on; stop after ``max_rollbacks``."""

    def __init__(self, lr_factor: float = 0.5, max_rollbacks: int = 3, max_weight: float = 1e6):
        super().__init__(max_weight)
        if not 0 < lr_factor < 1:
            raise UserError(f"divergence.lr_factor must be between 0 and 1 (exclusive): each "
                            f"rollback multiplies the learning rates by it; got {lr_factor}. "
                            "Use e.g. divergence.lr_factor=0.5.")
        if max_rollbacks < 1:
            raise UserError(f"divergence.max_rollbacks must be at least 1, got {max_rollbacks}.")
        self.lr_factor, self.max_rollbacks = lr_factor, max_rollbacks
        self.rollbacks = 0

    def handle(self, module, event):
        path = last_checkpoint(module.trainer)
        if self.rollbacks >= self.max_rollbacks or path is None:
            raise Diverged(stop_message(module, event) + f" ({self.rollbacks} rollbacks so far)")
        self.rollbacks += 1
        checkpoint = read_checkpoint(path)
        module.load_state_dict(checkpoint["state_dict"])  # copied onto the module's device
        optimizers = module.player_optimizers()
        for optimizer, state in zip(optimizers.values(), checkpoint["optimizer_states"]):
            optimizer.optimizer.load_state_dict(state)
        for player in optimizers:  # the schedule's base rate, not one group's current rate
            module.lr_scale[player] *= self.lr_factor
        module.apply_schedule()
        log.warning("%s at iteration %d: rolled back to %s (iteration %d) with learning rates "
                    "x%g", event.describe(), event.iteration, path,
                    run_state(checkpoint).iteration, self.lr_factor)

    def stats(self):
        return {"divergence/rollbacks": float(self.rollbacks)}


def last_checkpoint(trainer) -> Path | None:
    from ganrun.callbacks.checkpoint import IterationCheckpoint

    for callback in trainer.callbacks:
        if isinstance(callback, IterationCheckpoint) and callback.last_path.is_file():
            return callback.last_path
    return None


def kept(module) -> str:
    path = last_checkpoint(module.trainer)
    return f"The last good checkpoint is {path}." if path else "No checkpoint was saved before."


def stop_message(module, event) -> str:
    what = "Those weights were not saved" if event.weight is not None else \
        "That update was not applied and nothing later was saved"
    return (f"Training diverged at iteration {event.iteration}: {event.describe()}. {what}. "
            f"{kept(module)} Lower the learning rate (optimizer.lr=...), or choose "
            "divergence=skip or divergence=rollback.")
