"""Progress of the long steps (feature passes, classifier training, sampling, reports): a Rich
bar in a terminal, a plain line every ``every_percent`` percent in a log (nohup, SLURM), and
one early line with the estimated duration when a step will take long.

    with track("Real features", total=10000, unit="img", hint="metrics.real_samples") as bar:
        for batch in batches:
            ...
            bar.advance(len(batch))

Inside training the training bar is already on the screen: a step then shows as a second row
of that bar (``Live``), since Rich allows one live display at a time.
"""

import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console

from ganrun import stopping
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# A step estimated to take longer than this gets the estimate line (seconds).
LONG_SECONDS = 120.0
# The estimate is made once this many batches have run after the first (which includes
# warm-up: weights loading, oneDNN/cuDNN set-up) and is not representative.
ESTIMATE_AFTER = 2

_live: list["Progress"] = []  # the Rich display on the screen (the training bar), if any


def columns() -> list:
    """The columns every bar shares: count, bar, rate, labelled elapsed and remaining times."""
    return [TextColumn("{task.description}"), MofNCompleteColumn(), BarColumn(bar_width=8),
            TextColumn("{task.fields[rate]}"), TextColumn("elapsed"), TimeElapsedColumn(),
            TextColumn("remaining"), TimeRemainingColumn()]


def register_live(progress: Progress | None) -> None:
    """The training bar announces itself (None when it stops), so that steps run during
    training add a row to it instead of starting a second live display."""
    _live.clear()
    if progress is not None:
        _live.append(progress)


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


class Tracker:
    def __init__(self, description: str, total: int, unit: str, hint: str | None,
                 every_percent: float, stream, then: tuple[int, str] = (0, "")):
        self.description, self.total, self.unit, self.hint = description, total, unit, hint
        self.then, self.then_what = then  # units of a step of the same kind that follows
        self.every = max(every_percent, 1e-9)
        self.stream = stream
        self.done = self.batches = 0
        self.start = time.perf_counter()
        self.first_batch_end = None  # the estimate's clock starts after the warm-up batch
        self.first_batch_done = 0
        self.estimated = False
        self.next_percent = self.every
        self.progress, self.task, self.owned = None, None, False

    def open(self) -> "Tracker":
        if _live:  # a row of the training bar
            self.progress = _live[0]
        elif (console := Console(file=self.stream)).is_terminal:
            # No refresh thread (it would take CPU from the pass): redrawn at every batch.
            self.progress = Progress(*columns(), console=console, auto_refresh=False)
            self.progress.start()
            self.owned = True
        if self.progress is not None:
            self.task = self.progress.add_task(self.description, total=self.total, rate="")
            self.progress.refresh()
        return self

    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.start, 1e-9)

    def advance(self, n: int = 1) -> None:
        stopping.check()  # a stop signal during training: give up this step at once
        self.done += n
        self.batches += 1
        if self.batches == 1:
            self.first_batch_end, self.first_batch_done = time.perf_counter(), self.done
        elif self.batches == 1 + ESTIMATE_AFTER:
            self.maybe_estimate()
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done,
                                 rate=f"{self.rate():.1f} {self.unit}/s")
            self.progress.refresh()
        elif self.total and 100 * self.done / self.total >= self.next_percent:
            self.line()
            percent = 100 * self.done / self.total
            self.next_percent = (percent // self.every + 1) * self.every

    def maybe_estimate(self) -> None:
        """One line, early, when the whole step is going to take long at the rate measured so
        far, naming the knob that shortens it."""
        steady = (self.done - self.first_batch_done) / max(
            time.perf_counter() - self.first_batch_end, 1e-9)
        left = (self.total - self.done + self.then) / max(steady, 1e-9)
        if left < LONG_SECONDS or self.estimated:
            return
        self.estimated = True
        hint = f"; to shorten it: {self.hint}" if self.hint else ""
        after = f" and then {self.then} {self.then_what}" if self.then else ""
        self.say(f"{self.description}: about {duration(left)} more for {self.total} "
                 f"{self.unit}{after} at {steady:.1f} {self.unit}/s{hint}")

    def line(self) -> None:
        elapsed = time.perf_counter() - self.start
        rate = self.rate()
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        percent = 100 * self.done / self.total if self.total else 100.0
        self.say(f"{self.description}: {self.done}/{self.total} {self.unit} ({percent:.0f}%), "
                 f"{rate:.1f} {self.unit}/s, elapsed {duration(elapsed)}, "
                 f"remaining {duration(left)}")

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text)  # above the bar, which stays at the bottom
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.progress is None:
            return
        if self.owned:
            self.progress.stop()
        else:
            self.progress.remove_task(self.task)
            self.progress.refresh()


class Silent:
    """A step too small to report (``total < min_total``)."""

    def advance(self, n: int = 1) -> None:
        stopping.check()


@contextmanager
def track(description: str, total: int, unit: str = "img", hint: str | None = None,
          every_percent: float = 10, stream=None, min_total: int = 0,
          then: tuple[int, str] = (0, "")) -> Iterator[Tracker]:
    """A progress display for ``total`` units of work (see the module's docstring); ``hint``
    names what shortens the step, for the estimate line; nothing below ``min_total`` units."""
    if total < min_total:
        yield Silent()
        return
    tracker = Tracker(description, total, unit, hint, every_percent, stream or sys.stderr,
                      then)
    tracker.open()
    try:
        yield tracker
    finally:
        tracker.close()


def tracked(items: list, description: str, unit: str, min_total: int = 0) -> Iterator:
    """The items, one unit of progress each."""
    with track(description, len(items), unit, min_total=min_total) as bar:
        for item in items:
            yield item
            bar.advance()
