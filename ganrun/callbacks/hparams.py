"""Run hyperparameters for TensorBoard's HParams tab, without a placeholder ``hp_metric``."""

from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams

import pytorch_lightning as pl


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested config to ``{"a.b.c": value}`` with the scalar types the HParams tab accepts."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class HParams(pl.Callback):
    """Writes the run's choices and config once at the start, declaring ``metrics`` as the
    tags to compare, plus the ``hparam_metrics`` of other callbacks (e.g. ``metrics/fid``).
    The metric values come from the scalar curves themselves, so nothing is written at step 0
    and no curve gets a fake first point."""

    def __init__(self, metrics: list[str]):
        self.metrics = list(metrics)

    def on_fit_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        params = flatten({"choice": pl_module.choices, **(pl_module.config or {})})
        tags = self.metrics + [tag for callback in trainer.callbacks
                               for tag in getattr(callback, "hparam_metrics", [])]
        experiment, start, end = hparams(params, {tag: 0.0 for tag in tags})
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment.file_writer
                for summary in (experiment, start, end):
                    writer.add_summary(summary)
