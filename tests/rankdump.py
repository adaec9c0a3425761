"""A test-only callback: every DDP rank saves its parameters at the end of training."""

from pathlib import Path

import pytorch_lightning as pl
import torch


class RankDump(pl.Callback):
    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer, pl_module):
        params = {name: p.detach().cpu() for name, p in pl_module.named_parameters()}
        torch.save(params, self.dirpath / f"rank{trainer.global_rank}.pt")
