"""Run hyperparameters for TensorBoard's HParams tab and the other trackers: what tells runs
apart, not the whole config (which stays in ``.hydra/config.yaml``), and no placeholder
``hp_metric``.

The record holds the group choices (``choice.loss``: hinge), the keys set on the command line
or swept, with their resolved values, and a short list of numeric settings (``settings``).
Internals such as ``_target_``, paths and callback settings would bury those among ~100 columns.
"""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

import pytorch_lightning as pl

from ganrun.config import HYDRA_KEYS
from ganrun.loggers import log_run

# Overridden keys left out: paths differ between machines, and trackers, callbacks and how a
# run was started (resume=true) say nothing about what it trained.
NOT_COMPARED = ("hydra.", "paths.", "callbacks.", "logger.", "resume.")
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


# The choices that say most about a run, shown right after what the command line set.
MAIN_CHOICES = ("task", "model", "experiment", "loss", "dataset", "optimizer", "conditioning")


def record(config: dict, choices: dict, settings: list[str], overrides: list[str]) -> dict:
    """The run's hyperparameters, in the order the HParams tab shows its columns: first what
    the command line set (in a sweep, what tells its jobs apart), then the main choices, then
    the other choices in use, then the settings; groups left off last."""
    tree = OmegaConf.create(config)
    given = {}  # in the overrides' order, choices and keys alike
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if override.startswith("~") or _not_compared(key):
            continue
        if key in choices:
            given[f"choice.{key}"] = _option(choices[key])
        else:
            given.update(leaves(key, _plain(OmegaConf.select(tree, key, default=value))))
    groups = [g for g in MAIN_CHOICES if g in choices] + \
        sorted(g for g in choices if g not in MAIN_CHOICES and g != "paths")
    in_use = {f"choice.{g}": _option(choices[g]) for g in groups}
    params = {**given, **{k: v for k, v in in_use.items() if v != "none"}}
    for key in settings:
        params.update({k: v for k, v in leaves(key, _plain(OmegaConf.select(tree, key))).items()
                       if k not in params})
    params.update({k: v for k, v in in_use.items() if k not in params})
    return params


def _option(option) -> str:
    return "none" if option is None else str(option)


def swept_keys(given: list[str] | None = None) -> set[str]:
    """The keys a sweep varies: those given several values on its command line (loss=bce,hinge)
    and the sweeper's own ``hydra.sweeper.params``; ``given`` (a study's searched keys, which
    ``ganrun tune`` names for each trial) where known."""
    if given:
        return {key.lstrip("+~") for key in given}
    if not HydraConfig.initialized() or str(HydraConfig.get().mode) != "RunMode.MULTIRUN":
        return set()
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra = HydraConfig.get()
    keys = set((hydra.sweeper.get("params") or {}).keys())
    sweep_file = f"{hydra.sweep.dir}/multirun.yaml"
    try:
        given = OmegaConf.load(sweep_file).hydra.overrides.task
        keys |= {o.get_key_element() for o in OverridesParser.create().parse_overrides(given)
                 if o.is_sweep_override()}
    except Exception:  # no multirun.yaml (hydra.output_subdir=null): the swept keys are unknown
        pass
    return {key.lstrip("+~") for key in keys}


def first_swept(overrides: list[str], given: list[str] | None = None) -> list[str]:
    """The overrides with those of swept keys first."""
    swept = swept_keys(given)
    return sorted(overrides, key=lambda o: o.lstrip("+~").split("=")[0] not in swept)


def trial_name(overrides: list[str], given: list[str] | None = None) -> str:
    """What the HParams tab calls a run: in a sweep its job number and swept overrides, else its
    overrides; not the date/time path it cuts to a width where the runs of a sweep look alike."""
    swept = swept_keys(given)
    compared = [o for o in overrides if not _not_compared(o.lstrip("+~").split("=")[0])]
    shown = [o for o in compared if o.lstrip("+~").split("=")[0] in swept] or compared
    if swept and not given:
        return f"job {HydraConfig.get().job.num}: {' '.join(shown)}"
    if swept:  # a study's trial: its folder names it
        return f"{Path(HydraConfig.get().runtime.output_dir).name}: {' '.join(shown)}"
    return " ".join(shown) or "defaults"


def _plain(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _not_compared(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return f"{key}.".startswith(NOT_COMPARED) or any(word in leaf for word in PATH_WORDS)


class HParams(pl.Callback):
    """Gives every tracker the run's record once at the start, declaring ``metrics`` as the
    tags to compare, plus the ``hparam_metrics`` of other callbacks (e.g. ``metrics/fid``)."""

    def __init__(self, metrics: list[str], settings: list[str] | None = None,
                 overrides: list[str] | None = None, swept: list[str] | None = None):
        self.metrics = list(metrics)
        self.settings = list(settings or [])
        self.overrides = overrides  # None: the command line of the Hydra run
        self.swept = list(swept or [])  # the keys a study searches (ganrun tune sets them)

    def on_fit_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        overrides = first_swept(command_line() if self.overrides is None else
                                list(self.overrides), self.swept)
        config = {**(pl_module.config or {}), "data": pl_module.data_shape or {}}
        params = record(config, pl_module.choices, self.settings, overrides)
        tags = self.metrics + [tag for callback in trainer.callbacks
                               for tag in getattr(callback, "hparam_metrics", [])]
        log_run(trainer.loggers, params, tags, trial_name(overrides, self.swept),
                trainer.default_root_dir)
