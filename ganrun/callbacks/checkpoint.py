"""Checkpoints on the iteration axis: ``last.ckpt`` plus periodic ``iter_<n>.ckpt`` files."""

import os
from pathlib import Path

from ganrun.callbacks.base import IterationCallback


class IterationCheckpoint(IterationCallback):
    """Saves ``last.ckpt`` every ``last_every_n_iterations`` iterations and at the end of
    training, and keeps a copy every ``every_n_iterations`` iterations (0 disables either).

    A checkpoint is written to a temporary file and renamed into place, so a kill during a save
    leaves the previous file intact.
    """

    def __init__(self, dirpath: str, every_n_iterations: int = 5000,
                 last_every_n_iterations: int = 500):
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.last_every_n_iterations = last_every_n_iterations
        self._last_saved = None

    def on_iteration_end(self, trainer, pl_module, batch):
        it = pl_module.iteration
        if self.every_n_iterations and it % self.every_n_iterations == 0:
            self.save(trainer, f"iter_{it:07d}.ckpt")
        if self.last_every_n_iterations and it % self.last_every_n_iterations == 0:
            self.save(trainer, "last.ckpt")
            self._last_saved = it

    def on_train_end(self, trainer, pl_module):
        if self._last_saved != pl_module.iteration:
            self.save(trainer, "last.ckpt")

    def save(self, trainer, name: str) -> None:
        path = self.dirpath / name
        tmp = path.with_name(f".{name}.tmp")
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)  # writes on global rank 0 only
        if trainer.is_global_zero:
            os.replace(tmp, path)
        trainer.strategy.barrier("ganrun_checkpoint")
