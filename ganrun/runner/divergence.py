"""What a run does when a loss or a gradient stops being finite (the ``divergence`` group).

The module never applies an update whose loss or gradient is NaN or infinite; the policy
decides what happens next.
"""

import logging
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
    where a policy may change weights."""

    def handle(self, module, event) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, float]:
        return {}


class Stop(DivergencePolicy):
    """Stop with a message naming the iteration and the loss; keep the last good checkpoint."""

    def handle(self, module, event):
        raise Diverged(stop_message(module, event))


class Skip(DivergencePolicy):
    """Skip the update and go on; the number of skipped updates is logged."""

    def __init__(self):
        self.skipped = 0

    def handle(self, module, event):
        self.skipped += event.count
        log.warning("Skipped %d update(s) (the first at iteration %d: %s)", event.count,
                    event.iteration, event.describe())

    def stats(self):
        return {"divergence/skipped": float(self.skipped)}


class Rollback(DivergencePolicy):
    """Reload the last good checkpoint's weights and optimizer states, multiply the learning
    rates by ``lr_factor``, and go on; stop after ``max_rollbacks``."""

    def __init__(self, lr_factor: float = 0.5, max_rollbacks: int = 3):
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


def stop_message(module, event) -> str:
    path = last_checkpoint(module.trainer)
    kept = f"The last good checkpoint is {path}." if path else "No checkpoint was saved before."
    return (f"Training diverged at iteration {event.iteration}: {event.describe()}. That update "
            f"was not applied and nothing later was saved. {kept} Lower the learning rate "
            "(optimizer.lr=...), or choose divergence=skip or divergence=rollback.")
