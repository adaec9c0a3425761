"""A callback for scripts/gpu/bench.py: the steady-state images/s of a `ganrun train` run,
timed between two iterations (the device synchronized at both, nowhere else)."""

import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from ganrun.tasks.base import batch_size


class Timer(pl.Callback):
    def __init__(self, out: str, start: int, stop: int):
        self.out, self.start, self.stop = Path(out), start, stop
        self.images, self.began, self.trained_from = 0, None, None

    def on_train_start(self, trainer, pl_module):
        self.trained_from = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        it = pl_module.iteration
        if self.began is not None and it <= self.stop:
            self.images += batch_size(batch)
        if it == self.start and self.began is None:
            self._sync(pl_module)
            self.began = time.perf_counter()
            # The warm-up iterations' time: compilation, graph capture, cuDNN's autotuning.
            self.warmup_s = self.began - self.trained_from
        elif it == self.stop and self.began is not None:
            self._sync(pl_module)
            seconds = time.perf_counter() - self.began
            self.out.write_text(json.dumps({"images_per_s": self.images / seconds,
                                            "seconds": seconds, "images": self.images,
                                            "warmup_s": self.warmup_s}))
            self.began = None

    @staticmethod
    def _sync(pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
