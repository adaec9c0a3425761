"""A callback hook that fires once per completed iteration (one generator update)."""

import pytorch_lightning as pl


class IterationCallback(pl.Callback):
    """Calls ``on_iteration_end`` after each batch that completed an iteration.

    With ``n_critic > 1`` most batches only update the discriminator; the iteration counter
    on the module tells which batches finished an iteration.
    """

    _before = -1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._before = pl_module.iteration

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.iteration != self._before:
            self.on_iteration_end(trainer, pl_module, batch)

    def on_iteration_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch) -> None:
        raise NotImplementedError


def every(iteration: int, period: int) -> bool:
    """True on iterations 1, period, 2*period, ...: the first point shows where a curve starts."""
    return period > 0 and (iteration == 1 or iteration % period == 0)
