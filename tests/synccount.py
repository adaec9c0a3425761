"""A test-only callback: counts, batch by batch, the calls that read a tensor's value on the
host (on a GPU each one waits until the device is idle)."""

import json
from pathlib import Path

import pytorch_lightning as pl
import torch

READS = ("item", "__bool__", "tolist", "cpu", "numpy", "__float__", "__int__", "__index__",
         "__format__")


class SyncCount(pl.Callback):
    """Writes ``syncs.json``: ``{"batches": [reads during batch 1 (its step, the callbacks
    after it and the next batch's loading), ...], "iterations": [the iteration after each
    batch]}``. Add it last in the callbacks so the other callbacks' reads are counted."""

    def __init__(self, dirpath: str):
        self.path = Path(dirpath) / "syncs.json"
        self.count, self.batches, self.iterations, self.saved = 0, [], [], {}

    def on_train_start(self, trainer, pl_module):
        for name in READS:
            original = getattr(torch.Tensor, name)
            self.saved[name] = original
            setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def read(tensor, *args, **kwargs):
            self.count += 1
            return original(tensor, *args, **kwargs)
        return read

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.count = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # Added last, so every other callback's batch end has run: the count is the batch's.
        self.batches.append(self.count)
        self.iterations.append(pl_module.iteration)

    def on_train_end(self, trainer, pl_module):
        for name, original in self.saved.items():
            setattr(torch.Tensor, name, original)
        self.path.write_text(json.dumps({"batches": self.batches, "iterations": self.iterations}))
