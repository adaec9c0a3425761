"""Training progress on the iteration axis: a Rich bar in a terminal, plain lines in a log.

The bar (iteration count, images/s, elapsed and remaining time) fits 80 columns; the epoch and
latest losses go on a second row, and a third says where the run folder is and how to open it
in TensorBoard. When stderr is not a terminal (nohup, SLURM) a plain line with the same facts is
printed every ``plain_every_seconds`` instead, and always at the start and the end.
"""

import sys
import time

from pytorch_lightning.callbacks import ProgressBar
from rich.console import Console
from rich.progress import Progress
from rich.text import Text

from ganrun import stopping
from ganrun.progress import columns, duration, register_live, track


class _TrainingProgress(Progress):
    """Rich's bar with free-text rows under it (losses, run folder)."""

    footer: list[str] = []  # rows that fold at the screen's width

    def get_renderables(self):
        yield from super().get_renderables()
        for i, line in enumerate(self.footer):
            yield Text(line, overflow="fold")

from ganrun.tasks.base import batch_size


class IterationProgressBar(ProgressBar):
    """Replaces Lightning's batch-based bar, whose counts mix D-only and D+G batches."""

    def __init__(self, refresh_every_n_iterations: int = 10, plain_every_seconds: float = 30):
        super().__init__()
        self.refresh_every = max(1, refresh_every_n_iterations)
        self.plain_every = plain_every_seconds
        self._enabled = True
        self._progress = None
        self._plain = False
        self._active = False  # plain lines are being printed for this run
        self._before = -1
        self._warmup = None  # the warm-up's progress (None: not looked at yet; False: none)

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module):
        if not (self._enabled and trainer.is_global_zero):
            return
        folder = trainer.default_root_dir
        self._where = where_to_look(folder, trainer.loggers)
        self._start = self._clock = self._last_line = time.perf_counter()
        self._images, self._rate, self._first = 0, 0.0, pl_module.iteration
        self._printed = -1  # the iteration of the last plain line
        console = Console(stderr=True)
        self._plain = not console.is_terminal
        if self._plain:
            print("Training: " + " ".join(self._where), file=sys.stderr, flush=True)
            self._active = True
            return
        # No refresh thread: it would take CPU from training 10 times a second; the bar is
        # redrawn every refresh_every_n_iterations instead.
        self._progress = _TrainingProgress(*columns(), console=console, auto_refresh=False)
        self._progress.footer = ["", *self._where]
        self._task = self._progress.add_task("iter", total=pl_module.total_iterations,
                                             completed=pl_module.iteration, rate="")
        self._progress.start()
        register_live(self._progress)  # metric passes during training add a row to this bar

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._before = pl_module.iteration
        if self._warmup is None and self._enabled and trainer.is_global_zero:
            self._start_warmup(pl_module)

    def _start_warmup(self, pl_module) -> None:
        """The batches before the first iteration (a text encoder's training, a D warm-up)
        get a row of their own: they can take long, and trainer.max_steps does not count them."""
        task = pl_module.task
        left = task.warmup_batches() - pl_module.counters["batches"]
        self._warmup = False
        if left <= 0:
            return
        print(f"The first {task.warmup_batches()} batches are {task.warmup_name}; "
              "trainer.max_steps counts the iterations after them.", file=sys.stderr,
              flush=True)
        self._warmup_context = track(task.warmup_name, left, "batch")
        self._warmup = self._warmup_context.__enter__()

    def _advance_warmup(self, pl_module) -> None:
        if not self._warmup:
            return
        try:
            self._warmup.advance()
        except stopping.StopRequested:  # a stop signal: the run stops after this batch
            pass
        if pl_module.counters["batches"] >= pl_module.task.warmup_batches():
            self._warmup_context.__exit__(None, None, None)
            self._warmup = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._advance_warmup(pl_module)
        if self._progress is None and not self._active:
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
            register_live(None)
        elif self._active:
            self._refresh(trainer, pl_module, final=True)
            self._active = False

    def _refresh(self, trainer, pl_module, final: bool = False) -> None:
        now = time.perf_counter()
        if self._images:  # keep the last rate when nothing ran since (the final refresh)
            self._rate = self._images / max(now - self._clock, 1e-9)
        self._clock, self._images = now, 0
        if self._progress is not None:
            self._progress.footer = [self._info(pl_module), *self._where]
            self._progress.update(self._task, completed=pl_module.iteration,
                                  rate=f"{self._rate:.0f} img/s", refresh=True)
        elif pl_module.iteration != self._printed and (
                final or now - self._last_line >= self.plain_every
                or pl_module.iteration == self._first + self.refresh_every):
            self._last_line, self._printed = now, pl_module.iteration
            self._plain_line(pl_module, self._info(pl_module), now)

    @staticmethod
    def _info(pl_module) -> str:
        """The epoch and the latest losses (read from the device only when shown), the two
        players' totals first so that a narrow terminal never hides them."""
        tags = sorted((tag for tag in pl_module.stats if tag.startswith("loss/")),
                      key=lambda tag: tag not in ("loss/g", "loss/d"))
        losses = " ".join(f"{tag} {float(pl_module.stats[tag]):.3f}" for tag in tags)
        return f"epoch {pl_module.data_position['epoch']} | {losses}"

    def _plain_line(self, pl_module, info: str, now: float) -> None:
        it, total = pl_module.iteration, pl_module.total_iterations
        elapsed = now - self._start
        done = it - self._first
        left = elapsed / done * (total - it) if done > 0 and total else 0.0
        percent = f" ({100 * it / total:.0f}%)" if total else ""
        print(f"iter {it}/{total}{percent} | {info} | {self._rate:.0f} img/s | elapsed "
              f"{duration(elapsed)}, remaining {duration(left)}", file=sys.stderr, flush=True)


def where_to_look(folder, loggers) -> list[str]:
    """The run folder and how to watch the run, by the trackers it logs to (the command on a
    line of its own, so that it can be copied whole)."""
    from pytorch_lightning.loggers import TensorBoardLogger

    if any(isinstance(logger, TensorBoardLogger) for logger in loggers):
        return [f"run folder: {folder}; open it in TensorBoard with:",
                f"tensorboard --logdir {folder}"]
    names = ", ".join(type(logger).__name__ for logger in loggers) or "no tracker"
    return [f"run folder: {folder}; logged to {names} (csv/metrics.csv, samples/ in the folder)"]

