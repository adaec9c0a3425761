"""A test callback (``+callbacks.kill._target_=trackerkill.KillAt``) that kills a process group
(a tracking server and its workers) once training reaches an iteration: a tracker outage
mid-run."""

import os
import signal

import pytorch_lightning as pl


class KillAt(pl.Callback):
    def __init__(self, pid: int, at: int):
        self.pid, self.at, self.done = pid, at, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self.done and pl_module.iteration >= self.at:
            os.killpg(self.pid, signal.SIGKILL)
            self.done = True
