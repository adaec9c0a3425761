"""Stopping cleanly on SIGTERM/SIGINT/SIGUSR1: checkpoint at the current iteration, then exit."""

import os
import signal
import sys
from contextlib import contextmanager

import pytorch_lightning as pl

from ganrun import stopping
from ganrun.callbacks.base import IterationCallback
from ganrun.callbacks.checkpoint import IterationCheckpoint
from ganrun.private_apis import take_over_sigterm


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
_early: list[int] = []  # stop signals received before training started


@contextmanager
def signals_before_training():
    """Records stop signals that arrive while the run starts up (imports, data, models,
    checkpoint restore), so that GracefulStop stops before the first batch instead of the
    process dying with a traceback or losing the signal. A second signal stops at once."""
    def record(signum, frame):
        if _early:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping now")
        _early.append(signum)

    _early.clear()
    with handled(STOP_SIGNALS, record):
        yield


@contextmanager
def handled(signums, handler):
    """``handler`` for ``signums`` inside the block; the previous handlers come back after."""
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


class GracefulStop(IterationCallback):
    """On a stop signal, finishes the iteration under way, saves ``last.ckpt``, lets Lightning
    close the logs, and records the signal so that ``ganrun train`` exits non-zero.

    SIGTERM is what schedulers and ``kill`` send, SIGINT is Ctrl-C, and SIGUSR1 is SLURM's
    pre-emption warning (``--signal=USR1@90``). The signal is acknowledged at once; a metrics
    pass under way gives up at its next batch (``ganrun.stopping``). A second signal still
    saves; a third stops at once, without a checkpoint.
    """

    def __init__(self):
        self.received: int | None = None
        self.repeats = 0
        self._previous: dict = {}

    def on_train_start(self, trainer, pl_module):
        stopping.clear()
        # Installed after Lightning's own handlers, which only stop between batches and save
        # nothing.
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        take_over_sigterm(trainer)  # ours now; Lightning would exit
        if _early:  # nothing trained since the last checkpoint: stop before the first batch
            self.received = _early.pop()
            trainer.should_stop = True

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = signum
            stopping.request(signum)  # a metrics pass under way gives up at its next batch
            print(f"ganrun train: {name} received: stopping; the checkpoint is saved first "
                  "(a second signal does not lose it; a third quits at once).",
                  file=sys.stderr, flush=True)
            return
        self.repeats += 1
        if self.repeats >= 2:
            raise KeyboardInterrupt(f"third {name}: stopping now, without a checkpoint")
        print(f"ganrun train: {name} again: still stopping, saving the checkpoint (a third "
              "signal quits at once, without it).", file=sys.stderr, flush=True)

    def on_iteration_end(self, trainer, pl_module, batch):
        requested = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        if not requested:
            return
        self.received = self.received or signal.SIGTERM  # another rank got the signal
        for callback in trainer.callbacks:
            if isinstance(callback, IterationCheckpoint):
                callback.save_last(trainer, pl_module)
        trainer.should_stop = True

    def teardown(self, trainer, pl_module, stage):
        stopping.clear()
        for signum, handler in self._previous.items():
            # Stopping, saved: a repeated signal that arrives while the process exits is not a
            # KeyboardInterrupt traceback from whatever runs at exit (a third still quits).
            signal.signal(signum, handler if self.received is None else self._exiting)
        self._previous.clear()

    def _exiting(self, signum, frame):
        self.repeats += 1
        if self.repeats >= 2:
            os._exit(128 + signum)


def stop_signal(trainer: pl.Trainer) -> int | None:
    """The signal that stopped a finished ``fit``, if any."""
    for callback in trainer.callbacks:
        if isinstance(callback, GracefulStop) and callback.received is not None:
            return callback.received
    return None
