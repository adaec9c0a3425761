"""Remote trackers (MLflow, W&B) off the training thread: a tracker outage never stops or slows
training.

Every call to a remote tracker (scalars, pictures, the run's record, the end of the run) is
queued and made in order by one background thread. When the tracker fails, the thread says so
once, keeps the calls (up to ``max_calls``; the oldest are dropped beyond) and retries with a
growing pause (up to a minute); when the tracker answers again it sends what it kept and says so.
At the end of the run it waits ``flush_seconds`` at most for the queue to empty, then says how
many calls were not delivered. The run folder keeps every point in its own files either way
(TensorBoard's events or ``csv/metrics.csv``), which ``ganrun report`` reads.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger("ganrun")


class Relay:
    def __init__(self, name: str, max_calls: int = 100_000, flush_seconds: float = 30.0,
                 max_pause: float = 60.0):
        self.name, self.max_calls, self.flush_seconds = name, max_calls, flush_seconds
        self.max_pause = max_pause
        self._calls: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._down_since: float | None = None
        self.dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"ganrun-{name}", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """Queues ``fn(*args, **kwargs)``; returns at once."""
        with self._cond:
            if len(self._calls) >= self.max_calls:
                self._calls.popleft()
                self.dropped += 1
            self._calls.append((fn, args, kwargs))
            self._cond.notify()

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def _run(self) -> None:
        pause = 1.0
        while True:
            with self._cond:
                while not self._calls and not self._closed:
                    self._cond.wait()
                if not self._calls:
                    return
                fn, args, kwargs = self._calls[0]
                self._busy = True
            try:
                fn(*args, **kwargs)
            except Exception as err:  # the tracker is down, or refuses this call
                self._failed(err)
                with self._cond:
                    self._busy = False
                    self._cond.wait(timeout=pause)  # close() wakes it for a last try
                pause = min(pause * 2, self.max_pause)
                continue
            with self._cond:
                self._calls.popleft()
                self._busy = False
                self._cond.notify_all()
            pause = 1.0
            if self._down_since is not None:
                log.warning("logger=%s answers again after %.0f s: the calls kept meanwhile are "
                            "being sent.", self.name, time.monotonic() - self._down_since)
                self._down_since = None

    def _failed(self, err: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("logger=%s failed (%s: %s). Training goes on: ganrun keeps the tracker's "
                        "data and retries in the background; the run folder's own files keep "
                        "every point.", self.name, type(err).__name__,
                        " ".join(str(err).split())[:200])

    def close(self) -> int:
        """Waits for the queue to empty (``flush_seconds`` at most); returns the calls left
        undelivered, and says so."""
        deadline = time.monotonic() + self.flush_seconds
        with self._cond:
            while (self._calls or self._busy) and time.monotonic() < deadline:
                self._cond.notify_all()
                self._cond.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            left = len(self._calls)
            self._closed = True
            self._calls.clear()
            self._cond.notify_all()
        lost = left + self.dropped
        if lost:
            log.warning("logger=%s: %d call(s) could not be delivered (the tracker did not "
                        "answer); the run folder's own files hold every point.", self.name, lost)
        return lost
