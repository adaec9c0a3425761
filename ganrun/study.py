"""An Optuna study on disk, as ``ganrun tune`` keeps it: the journal file ``study.log`` in the
study folder, the search space of an ``hparams_search`` spec, and ``trial.json`` in each trial's
run folder (which study and trial the run reports to).

The journal file is Optuna's append-only storage: several processes (two ``ganrun tune`` on the
same folder, and each trial's training process reporting its FID) write it under a file lock,
and a study killed at any point is read back whole.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ganrun.errors import UserError

STUDY_FILE = "study.log"
TRIAL_FILE = "trial.json"
SPEC_KINDS = ("float", "int", "choice")
# What a study's stored pruner spec may build: read back from a file, it is data, not code.
PRUNER_PREFIX = "optuna.pruners."


def storage(folder: str | Path):
    """The study folder's journal storage (created if missing)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(folder) / STUDY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # An open() lock rather than Optuna's default symlink lock: it also works on file systems
    # without symlinks (some network and Windows shares).
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def load(folder: str | Path, name: str | None = None, pruner=None, sampler=None):
    """The study stored in ``folder`` (its only study when ``name`` is None)."""
    import optuna

    if not (Path(folder) / STUDY_FILE).is_file():
        raise UserError(f"{folder} holds no Optuna study ({STUDY_FILE} is missing). Give the "
                        "folder that `ganrun tune` printed (outputs/tune/<search> by default).")
    store = storage(folder)
    if name is None:
        names = [s.study_name for s in store.get_all_studies()]
        if len(names) != 1:
            raise UserError(f"{folder}/{STUDY_FILE} holds {len(names)} studies "
                            f"({', '.join(names) or 'none'}); expected one.")
        name = names[0]
    return optuna.load_study(study_name=name, storage=store, pruner=pruner,
                             sampler=sampler or optuna.samplers.RandomSampler())


def distributions(params: dict[str, Any]) -> dict:
    """Optuna distributions of a spec's ``params``: ``{float: [low, high], log: bool, step: x}``,
    ``{int: [low, high], log: bool, step: n}`` or ``{choice: [a, b, ...]}`` per override key."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    if not params:
        raise UserError("The search has no parameters (hparams_search.params is empty). Give "
                        "each key to search, e.g. hparams_search.params={optimizer.lr: "
                        "{float: [1e-5, 1e-3], log: true}}.")
    space = {}
    for key, spec in params.items():
        kinds = [kind for kind in SPEC_KINDS if kind in (spec or {})]
        extra = set(spec or {}) - {*SPEC_KINDS, "log", "step"}
        if len(kinds) != 1 or extra:
            raise UserError(f"hparams_search.params.{key} must be one of {{float: [low, high]}}, "
                            f"{{int: [low, high]}} (each with optional log: true or step:) or "
                            f"{{choice: [a, b, ...]}}; got {dict(spec or {})}.")
        kind, values = kinds[0], list(spec[kinds[0]])
        if kind == "choice":
            if not values:
                raise UserError(f"hparams_search.params.{key}.choice is empty: list the values "
                                "to try.")
            space[key] = CategoricalDistribution(values)
            continue
        if len(values) != 2 or not values[0] < values[1]:
            raise UserError(f"hparams_search.params.{key}.{kind} must be [low, high] with low < "
                            f"high; got {values}.")
        try:
            cls = FloatDistribution if kind == "float" else IntDistribution
            space[key] = cls(values[0], values[1], log=bool(spec.get("log", False)),
                             step=spec.get("step", None if kind == "float" else 1))
        except ValueError as err:
            raise UserError(f"hparams_search.params.{key}: {err}") from None
    return space


def override(key: str, value: Any) -> str:
    """The command-line override that gives ``key`` a sampled ``value``."""
    if isinstance(value, float):
        value = repr(value)
    elif isinstance(value, bool):
        value = str(value).lower()
    return f"{key}={value}"


def pruner_from(spec: dict | None):
    """The pruner a study's stored spec names, built only from Optuna's own pruners."""
    import optuna
    from hydra.utils import instantiate

    from ganrun.config import allow_building

    if not spec:
        return optuna.pruners.NopPruner()
    target = str(spec.get("_target_", ""))
    if not target.startswith(PRUNER_PREFIX) or "._" in target:
        raise UserError(f"The study's pruner {target!r} is not one of Optuna's pruners "
                        f"({PRUNER_PREFIX}*). Set hparams_search.pruner to one of them (e.g. "
                        "optuna.pruners.MedianPruner), or null for no pruning.")
    allow_building(target)
    return instantiate(spec)


def write_trial_file(run_dir: Path, study_dir: Path, study_name: str, number: int,
                     metric: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"study_dir": str(study_dir.resolve()), "study": study_name, "trial": number,
              "metric": metric}
    (run_dir / TRIAL_FILE).write_text(json.dumps(record, indent=1))


def read_trial_file(run_dir: str | Path) -> dict | None:
    """The study and trial a run folder reports to, or None for a run outside a study."""
    path = Path(run_dir) / TRIAL_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return {"study_dir": str(record["study_dir"]), "study": str(record["study"]),
                "trial": int(record["trial"]), "metric": str(record["metric"])}
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not a trial file written by `ganrun tune`. Remove it to "
                        "train the run outside its study.") from None


def finite(value) -> bool:
    return value is not None and math.isfinite(float(value))
