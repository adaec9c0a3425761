"""The search a ``ganrun tune`` study runs, composed and checked before its first trial: the
``hparams_search`` preset merged onto its schema, the space as Optuna distributions, the pruner,
and one trial's whole config validated as ``ganrun train`` would, so that a typo or a metric
nothing computes fails in a second instead of in every trial."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ganrun import study as studies
from ganrun.errors import UserError


@dataclass
class Plan:
    """What a study runs: its spec, folder and the overrides of every trial."""

    name: str
    spec: DictConfig             # a validated SearchConfig
    folder: Path
    overrides: list[str]         # given to each trial, before its sampled parameters
    config_dir: str | None
    space: dict                  # Optuna distributions of the searched keys
    every: int                   # metrics.every_n_iterations: `evaluations` evenly spaced


def plan(overrides: list[str], config_dir: str | None) -> Plan:
    """Composes the train config with the search; a ``UserError`` for anything that would make
    every trial fail (a misspelled key, a metric nothing computes, no run length)."""
    from ganrun.schema import SearchConfig

    searched = [o for o in overrides if o.lstrip("+~").startswith("hparams_search")]
    cfg = _compose([_search_key(o) for o in searched], config_dir, "The search")
    name = cfg.hydra.runtime.choices.get("hparams_search")
    if not name or cfg.get("hparams_search") is None:
        raise UserError("ganrun tune needs a search: hparams_search=<option> (conf/hparams_search/ "
                        "has fid_lr, with hparams_search/pruner=median|successive_halving|none; "
                        "--config-dir adds your own). E.g. "
                        "ganrun tune hparams_search=fid_lr dataset.root=<data folder>.")
    try:
        spec = OmegaConf.merge(OmegaConf.structured(SearchConfig), cfg.hparams_search)
    except Exception as err:
        raise UserError(f"hparams_search={name} is not a valid search: "
                        f"{str(err).splitlines()[0]}. Its keys: {', '.join(SearchConfig.__annotations__)}.") from None
    _check_spec(spec, name)
    studies.pruner_from(plain(spec.pruner))  # a pruner that cannot be built fails now
    space = studies.distributions(OmegaConf.to_container(spec.params, resolve=True))
    given = [o for o in overrides if o not in searched]
    trial_overrides = [*spec.overrides, *given]
    first = {key: _first_value(dist) for key, dist in space.items()}
    trial_cfg = _trial_config(trial_overrides, first, config_dir)
    _check_trials(trial_cfg, spec)
    # Every value a trial may draw: each choice, each bound (the others at their first value),
    # so that a bad one fails now rather than in the trial that draws it.
    for key, dist in space.items():
        for value in _values_to_check(dist):
            if value != first[key]:
                _trial_config(trial_overrides, {**first, key: value}, config_dir,
                              f"hparams_search.params.{key} = {value!r}")
    folder = Path(spec.study_dir or Path("outputs") / "tune" / name)
    # The evaluations are spaced on the run length the command gives (a searched max_steps
    # would give each trial its own spacing, and the pruner nothing to compare).
    given_steps = _compose(trial_overrides, config_dir, "The trials' config").trainer.max_steps
    every = max(1, int(given_steps or trial_cfg.trainer.max_steps) // int(spec.evaluations))
    return Plan(name, spec, folder, trial_overrides, config_dir, space, every)


def _trial_config(overrides: list[str], values: dict, config_dir: str | None,
                  drawn: str | None = None) -> DictConfig:
    """One trial's validated config for these drawn ``values``."""
    from hydra.core.hydra_config import HydraConfig

    from ganrun.config import validate

    sampled = [studies.override(key, value) for key, value in values.items()]
    try:
        cfg = _compose(overrides + sampled, config_dir, "The trials' config")
        with open_dict(cfg):  # validate() resolves ${hydra:...}, as a run would
            cfg.hydra.runtime.output_dir = cfg.hydra.run.dir
        HydraConfig.instance().set_config(cfg)
        return validate(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    except UserError as err:
        if drawn is None:
            raise
        raise UserError(f"A trial drawing {drawn} could not run: {err}") from None


def _values_to_check(dist) -> list:
    if hasattr(dist, "choices"):
        return list(dist.choices)
    return [dist.low, dist.high]


def _compose(overrides: list[str], config_dir: str | None, what: str) -> DictConfig:
    from ganrun.overrides import check_overrides

    cfg = check_overrides("ganrun train", "train", overrides, config_dir)
    if cfg is None:
        raise UserError(f"{what} cannot be composed from {' '.join(overrides)}. Check it "
                        "with ganrun train <the same overrides> --cfg job.")
    return cfg


def plain(node):
    """A config node as plain data (the pruner's spec, stored in the study), or None."""
    return OmegaConf.to_container(node, resolve=True) if node else None


def _search_key(override: str) -> str:
    """``hparams_search.<key>=v`` also sets a key the search's file leaves to the schema."""
    from ganrun.schema import SearchConfig

    key = override.split("=", 1)[0]
    if key.startswith("hparams_search.") and key.split(".")[1] in SearchConfig.__annotations__:
        return f"++{override}"
    return override


def _first_value(dist):
    return dist.choices[0] if hasattr(dist, "choices") else dist.low


def _check_spec(spec: DictConfig, name: str) -> None:
    if spec.direction not in ("minimize", "maximize"):
        raise UserError(f"hparams_search.direction must be minimize or maximize, got "
                        f"{spec.direction!r}.")
    for key in ("n_trials", "evaluations"):
        if spec[key] < 1:
            raise UserError(f"hparams_search.{key} must be at least 1, got {spec[key]}.")


def _check_trials(cfg: DictConfig, spec: DictConfig) -> None:
    steps = cfg.trainer.max_steps
    if not steps:
        raise UserError("A study's trials need a length in iterations, where they are compared "
                        "and pruned: set trainer.max_steps=<iterations> (not max_epochs).")
    if steps < spec.evaluations:
        raise UserError(f"trainer.max_steps={steps} is shorter than hparams_search.evaluations="
                        f"{spec.evaluations}: each evaluation needs at least one iteration.")
    if spec.metric.startswith("metrics/") and not cfg.metrics.evaluate:
        raise UserError(f"hparams_search.metric={spec.metric}, but the trials evaluate no metric "
                        "(metrics=none). Choose metrics that compute it (e.g. metrics=fid on the "
                        "command line or in hparams_search.overrides).")
