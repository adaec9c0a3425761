"""Run hyperparameters for TensorBoard's HParams tab: what tells runs apart, not the whole
config (which stays in ``.hydra/config.yaml``), and no placeholder ``hp_metric``.

The record holds the group choices (``choice.loss``: hinge), the keys set on the command line
or swept, with their resolved values, and a short list of numeric settings (``settings``).
Internals such as ``_target_``, paths and callback settings would bury those among ~100 columns.
"""

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams

import pytorch_lightning as pl

from ganrun.config import HYDRA_KEYS

# Overridden keys left out: paths differ between machines and say nothing about the run.
NOT_COMPARED = ("hydra.", "paths.", "callbacks.")
PATH_WORDS = ("root", "dir", "path", "file")


def leaves(name: str, value) -> dict:
    """``{"a.b.c": value}`` for the scalars under ``value``, without Hydra's keys."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key not in HYDRA_KEYS
                for k, v in leaves(f"{name}.{key}", item).items()}
    if isinstance(value, (list, tuple)):
        return {k: v for i, item in enumerate(value) for k, v in leaves(f"{name}.{i}", item).items()}
    if value is None:
        return {}
    return {name: value if isinstance(value, (bool, int, float, str)) else str(value)}


def command_line() -> list[str]:
    """The run's command-line (and swept) overrides, as Hydra recorded them."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def record(config: dict, choices: dict, settings: list[str], overrides: list[str]) -> dict:
    params = {f"choice.{group}": "none" if option is None else str(option)
              for group, option in sorted(choices.items()) if group != "paths"}
    tree = OmegaConf.create(config)
    for key in settings:
        params.update(leaves(key, _plain(OmegaConf.select(tree, key))))
    for override in overrides:
        key, _, given = override.lstrip("+").partition("=")
        if key in choices or override.startswith("~") or _not_compared(key):
            continue
        params.update(leaves(key, _plain(OmegaConf.select(tree, key, default=given))))
    return params


def _plain(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _not_compared(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return key.startswith(NOT_COMPARED) or any(word in leaf for word in PATH_WORDS)


class HParams(pl.Callback):
    """Writes the run's record once at the start, declaring ``metrics`` as the tags to
    compare, plus the ``hparam_metrics`` of other callbacks (e.g. ``metrics/fid``). The tab
    shows each tag's last value (the final losses and metrics) from the scalar curves
    themselves, so nothing is written at step 0 and no curve gets a fake first point."""

    def __init__(self, metrics: list[str], settings: list[str] | None = None,
                 overrides: list[str] | None = None):
        self.metrics = list(metrics)
        self.settings = list(settings or [])
        self.overrides = overrides  # None: the command line of the Hydra run

    def on_fit_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        overrides = command_line() if self.overrides is None else list(self.overrides)
        config = {**(pl_module.config or {}), "data": pl_module.data_shape or {}}
        params = record(config, pl_module.choices, self.settings, overrides)
        tags = self.metrics + [tag for callback in trainer.callbacks
                               for tag in getattr(callback, "hparam_metrics", [])]
        experiment, start, end = hparams(params, {tag: 0.0 for tag in tags})
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment.file_writer
                for summary in (experiment, start, end):
                    writer.add_summary(summary)
