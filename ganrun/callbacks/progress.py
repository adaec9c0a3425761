"""A Rich progress bar on the iteration axis: iteration, epoch, latest losses, images/s."""

import time

from pytorch_lightning.callbacks import ProgressBar
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ganrun.tasks.base import batch_size


class IterationProgressBar(ProgressBar):
    """Replaces Lightning's batch-based bar, whose counts mix D-only and D+G batches."""

    def __init__(self, refresh_every_n_iterations: int = 10):
        super().__init__()
        self.refresh_every = max(1, refresh_every_n_iterations)
        self._enabled = True
        self._progress = None
        self._before = -1

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module):
        if not (self._enabled and trainer.is_global_zero):
            return
        self._progress = Progress(
            TextColumn("iter {task.completed}/{task.total}"), BarColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            # No refresh thread: it would take CPU from training 10 times a second; the bar is
            # redrawn every refresh_every_n_iterations instead.
            console=Console(stderr=True), auto_refresh=False)
        self._task = self._progress.add_task("train", total=pl_module.max_iterations,
                                             completed=pl_module.iteration, info="")
        self._progress.start()
        self._clock, self._images, self._rate = time.perf_counter(), 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._before = pl_module.iteration

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._progress is None:
            return
        self._images += batch_size(batch)
        it = pl_module.iteration
        if it != self._before and it % self.refresh_every == 0:
            self._refresh(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        if self._progress is not None:
            self._refresh(trainer, pl_module)
            self._progress.stop()
            self._progress = None

    def _refresh(self, trainer, pl_module) -> None:
        now = time.perf_counter()
        if self._images:  # keep the last rate when nothing ran since (the final refresh)
            self._rate = self._images / max(now - self._clock, 1e-9)
        self._clock, self._images = now, 0
        losses = " ".join(f"{tag} {float(value):.3f}" for tag, value in pl_module.stats.items()
                          if tag.startswith("loss/"))
        info = f"epoch {pl_module.data_position['epoch']} | {losses} | {self._rate:.0f} img/s"
        self._progress.update(self._task, completed=pl_module.iteration, info=info, refresh=True)
