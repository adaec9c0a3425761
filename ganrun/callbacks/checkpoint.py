"""Checkpoints on the iteration axis: ``last.ckpt`` plus periodic ``iter_<n>.ckpt`` files."""

import errno
import os
from pathlib import Path

from ganrun.callbacks.base import IterationCallback
from ganrun.errors import UserError


class IterationCheckpoint(IterationCallback):
    """Saves ``last.ckpt`` every ``last_every_n_iterations`` iterations and at the end of
    training, and keeps a copy every ``every_n_iterations`` iterations (0 disables either).

    A checkpoint is written to a temporary file and renamed into place, so a kill or a full
    disk during a save leaves the previous file intact.
    """

    def __init__(self, dirpath: str, every_n_iterations: int = 5000,
                 last_every_n_iterations: int = 500):
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.last_every_n_iterations = last_every_n_iterations
        self._last_saved = None
        self.enabled = True  # off once training diverged: a broken state is never saved

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def on_iteration_end(self, trainer, pl_module, batch):
        it = pl_module.iteration
        if self.every_n_iterations and it % self.every_n_iterations == 0:
            self.save(trainer, f"iter_{it:07d}.ckpt")
        if self.last_every_n_iterations and it % self.last_every_n_iterations == 0:
            self.save_last(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        self.save_last(trainer, pl_module)

    def save_last(self, trainer, pl_module) -> None:
        if self._last_saved != pl_module.iteration:
            self.save(trainer, "last.ckpt")
            self._last_saved = pl_module.iteration

    def save(self, trainer, name: str) -> None:
        if not self.enabled:
            return
        path = self.dirpath / name
        tmp = path.with_name(f".{name}.tmp")
        try:
            if trainer.is_global_zero:
                self.dirpath.mkdir(parents=True, exist_ok=True)
            trainer.save_checkpoint(tmp, weights_only=False)  # writes on global rank 0 only
            if trainer.is_global_zero:
                os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            full = " The disk is full: free some space." if err.errno == errno.ENOSPC else ""
            raise UserError(f"Could not write checkpoint {path}: {err.strerror or err}.{full} "
                            f"The previous {name} (if any) is intact; resume from it once the "
                            "problem is fixed.") from err
        trainer.strategy.barrier("ganrun_checkpoint")
