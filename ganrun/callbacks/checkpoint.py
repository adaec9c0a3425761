"""Checkpoints on the iteration axis: ``last.ckpt``, periodic ``iter_<n>.ckpt`` files, and
``best.ckpt`` for the best value of a monitored metric."""

import errno
import os
from pathlib import Path

from ganrun.callbacks.base import IterationCallback
from ganrun.errors import UserError


class IterationCheckpoint(IterationCallback):
    """Saves ``last.ckpt`` every ``last_every_n_iterations`` iterations and at the end of
    training, and keeps a copy every ``every_n_iterations`` iterations (0 disables either).

    With ``monitor`` (e.g. ``metrics/fid``), ``best.ckpt`` is rewritten whenever that value in
    ``trainer.callback_metrics`` improves (``mode`` min or max); the callback that computes it
    must come before this one in the callbacks list.

    A checkpoint is written to a temporary file and renamed into place, so a kill or a full
    disk during a save leaves the previous file intact.
    """

    def __init__(self, dirpath: str, every_n_iterations: int = 5000,
                 last_every_n_iterations: int = 500, monitor: str | None = None,
                 mode: str = "min"):
        if mode not in ("min", "max"):
            raise UserError(f"callbacks.checkpoint.mode must be min or max, got {mode!r}.")
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.last_every_n_iterations = last_every_n_iterations
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self._last_saved = None
        self._trained = False

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_iteration_end(self, trainer, pl_module, batch):
        self._trained = True
        it = pl_module.iteration
        if self.every_n_iterations and it % self.every_n_iterations == 0:
            self.save(trainer, f"iter_{it:07d}.ckpt")
        if self.last_every_n_iterations and it % self.last_every_n_iterations == 0:
            self.save_last(trainer, pl_module)
        self.save_if_best(trainer)

    def on_train_end(self, trainer, pl_module):
        if not self._trained:  # stopped before the first iteration: the last file stays as is
            return
        self.save_last(trainer, pl_module)
        self.save_if_best(trainer)

    def save_last(self, trainer, pl_module) -> None:
        if self._last_saved != pl_module.iteration:
            self.save(trainer, "last.ckpt")
            self._last_saved = pl_module.iteration

    def save_if_best(self, trainer) -> None:
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        if value is None:
            return
        value = float(value)
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best = value
            self.save(trainer, "best.ckpt")

    def state_dict(self) -> dict:
        return {"best": self.best}  # a resumed run keeps the best value it has to beat

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")

    def save(self, trainer, name: str) -> None:
        # The updates since the last look are checked first: a run that diverged stops (or
        # rolls back) before anything later is saved.
        module = getattr(trainer, "lightning_module", None)
        if module is not None:
            module.check_health()
        # Flushed first: after a kill, everything logged up to the checkpoint is on disk, so a
        # resumed run's curves have no gap (TensorBoard buffers events for up to 2 minutes).
        for logger in trainer.loggers:
            logger.save()
        path = self.dirpath / name
        tmp = path.with_name(f".{name}.tmp")
        try:
            if trainer.is_global_zero:
                self.dirpath.mkdir(parents=True, exist_ok=True)
            # A save (not a load): weights_only=False keeps the optimizers too. Rank 0 writes.
            trainer.save_checkpoint(tmp, weights_only=False)
            if trainer.is_global_zero:
                os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            full = " The disk is full: free some space." if err.errno == errno.ENOSPC else ""
            raise UserError(f"Could not write checkpoint {path}: {err.strerror or err}.{full} "
                            f"The previous {name} (if any) is intact; resume from it once the "
                            "problem is fixed.") from err
        trainer.strategy.barrier("ganrun_checkpoint")
