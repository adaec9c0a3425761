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
from ganrun.files import write_text

STUDY_FILE = "study.log"
TRIAL_FILE = "trial.json"
SPEC_KINDS = ("float", "int", "choice")
# What a study's stored pruner spec may build: read back from a file, it is data, not code.
PRUNER_PREFIX = "optuna.pruners."


def storage(folder: str | Path, write: bool = True):
    """The study folder's journal storage (created if missing). A journal is checked first
    (``check_journal``): a torn last record (a kill or a full disk mid-write) is cut before
    anything is appended after it; damage further up is a ``UserError``. ``write=False`` reads
    a copy of the journal's intact records: nothing in the folder is written or locked (a
    read-only folder, a study still running elsewhere)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(folder) / STUDY_FILE
    if not write:
        return _opened(path, lambda: JournalStorage(JournalFileBackend(str(_intact_copy(path)))))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # An open() lock rather than Optuna's default symlink lock: it also works on file
        # systems without symlinks (some network and Windows shares).
        lock = JournalFileOpenLock(str(path))
        lock.acquire()
    except OSError as err:
        raise UserError(f"The study folder {path.parent} cannot be written "
                        f"({err.strerror or err}): ganrun tune keeps its journal and a lock "
                        "there. Make it writable, or continue the study in a copy of the folder "
                        "(hparams_search.study_dir=<copy>).") from None
    try:
        torn = check_journal(path, repair=True)
    finally:
        lock.release()
    if torn:
        import logging
        logging.getLogger("ganrun").warning("%s", torn)
    return _opened(path, lambda: JournalStorage(
        JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))))


def _opened(path: Path, open_storage):
    """The storage, or a ``UserError`` for a journal whose records are JSON but not Optuna's
    (Optuna's replay fails on them with an assertion or a KeyError)."""
    try:
        return open_storage()
    except Exception as err:
        raise UserError(f"{path} is not an Optuna journal ganrun can read ({type(err).__name__}"
                        f": {' '.join(str(err).split())[:150] or 'an unknown record'}). Restore "
                        "the journal, or start another study (hparams_search.study_dir=<new "
                        "folder>).") from None


def check_journal(path: Path, repair: bool) -> str | None:
    """A ``UserError`` where a record above the last is damaged (the records before it are
    intact and untouched). A torn last record is cut when ``repair`` (kept beside the journal
    as ``study.log.torn``), and the message saying so is returned."""
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror or err}).") from None
    if not data.strip():
        _refuse_emptied(path)
        return None
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    bad = next((i for i, line in enumerate(complete) if not _record(line)), None)
    if bad is not None and bad < len(complete) - 1:
        raise UserError(
            f"The study journal {path} is damaged at line {bad + 1} of {len(complete)}: that "
            f"record is not JSON. The {bad} records before it are intact and were not touched. "
            f"To continue from them, keep the first {bad} lines (e.g. `head -n {bad} {path} > "
            f"{path}.intact`, then replace the journal with that file); `ganrun report` shows "
            "them as they are.")
    if bad is None and not tail:
        return None
    torn = (complete[bad] + b"\n" if bad is not None else b"") + tail
    keep = len(data) - len(torn)
    if not repair:
        return f"{path}: its last record is torn; it was left out."
    with path.with_name(STUDY_FILE + ".torn").open("ab") as f:
        f.write(torn)
    with path.open("r+b") as f:
        f.truncate(keep)
    return (f"{path}: its last record was torn (a process stopped while writing it, or the disk "
            f"was full): cut before continuing, kept in {STUDY_FILE}.torn; the records before "
            "it are intact.")


def _record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _refuse_emptied(path: Path) -> None:
    trials = sorted(p.name for p in path.parent.glob("trial_*") if p.is_dir())
    if trials:
        raise UserError(f"The study journal {path} is empty or missing, but its folder holds the "
                        f"trial folders {', '.join(trials[:5])}{' ...' if len(trials) > 5 else ''}"
                        ": the journal was emptied or removed, and continuing would record those "
                        "trials as lost. Restore the journal, or start another study "
                        "(hparams_search.study_dir=<new folder>).")


def _intact_copy(path: Path) -> Path:
    """A temporary copy of the journal's intact records (all up to a damaged or torn one)."""
    import atexit
    import tempfile

    data = path.read_bytes()
    lines = data.split(b"\n")
    intact = []
    for line in lines[:-1]:
        if not _record(line):
            break
        intact.append(line + b"\n")
    handle = tempfile.NamedTemporaryFile(prefix="ganrun-study-", suffix=".log", delete=False)
    with handle:
        handle.write(b"".join(intact))
    atexit.register(lambda: Path(handle.name).unlink(missing_ok=True))
    return Path(handle.name)


def load(folder: str | Path, name: str | None = None, pruner=None, sampler=None,
         write: bool = True):
    """The study stored in ``folder`` (its only study when ``name`` is None)."""
    import optuna

    if not (Path(folder) / STUDY_FILE).is_file():
        raise UserError(f"{folder} holds no Optuna study ({STUDY_FILE} is missing). Give the "
                        "folder that `ganrun tune` printed (outputs/tune/<search> by default).")
    store = storage(folder, write=write)
    names = [s.study_name for s in store.get_all_studies()]
    if name is None:
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
        raw = spec[kinds[0]]
        if not isinstance(raw, (list, tuple)):
            raise UserError(f"hparams_search.params.{key}.{kinds[0]} must be a list, got "
                            f"{raw!r}.")
        kind, values = kinds[0], list(raw)
        if kind == "choice":
            if not values:
                raise UserError(f"hparams_search.params.{key}.choice is empty: list the values "
                                "to try.")
            bad = [v for v in values if not isinstance(v, (str, int, float, bool, type(None)))
                   or (isinstance(v, float) and not math.isfinite(v))]
            if bad:
                raise UserError(f"hparams_search.params.{key}.choice holds {bad[0]!r}: each "
                                "choice is a finite number, a string, true/false or null.")
            space[key] = CategoricalDistribution(values)
            continue
        number = int if kind == "int" else (int, float)
        if len(values) != 2 or not all(isinstance(v, number) and not isinstance(v, bool)
                                       and math.isfinite(v) for v in values):
            raise UserError(f"hparams_search.params.{key}.{kind} must be [low, high], two "
                            f"finite {'integers' if kind == 'int' else 'numbers'}; got {values}.")
        if not values[0] < values[1]:
            raise UserError(f"hparams_search.params.{key}.{kind} must be [low, high] with low < "
                            f"high; got {values}.")
        step = spec.get("step")
        if step is not None and (not isinstance(step, number) or isinstance(step, bool)
                                 or not math.isfinite(step) or step <= 0):
            raise UserError(f"hparams_search.params.{key}.step must be a positive "
                            f"{'integer' if kind == 'int' else 'number'}, got {step!r}.")
        try:
            cls = FloatDistribution if kind == "float" else IntDistribution
            space[key] = cls(values[0], values[1], log=bool(spec.get("log", False)),
                             step=spec.get("step", None if kind == "float" else 1))
        except ValueError as err:
            raise UserError(f"hparams_search.params.{key}: {err}") from None
    return space


def checked_params(trial, space: dict, folder: Path) -> dict[str, Any]:
    """A trial's parameters as the journal stores them, checked against the search the user
    gave (``space``): the journal is data, so a parameter the search does not have, or a value
    its distribution does not hold, is refused rather than passed to ``ganrun train``."""
    params = dict(trial.params)
    for key, value in params.items():
        if not _holds(space.get(key), value):
            shown = " ".join(f"{key}={value!r}".split())[:120]
            raise UserError(f"Trial {trial.number} of the study in {folder} ({STUDY_FILE}) has "
                            f"the parameter `{shown}`, which the search you gave does not hold "
                            "(another search, or an edited journal). The journal is read as "
                            "data: continue this study with the search it was created with, or "
                            "start another study (hparams_search.study_dir=<new folder>).")
    return params


def _holds(dist, value) -> bool:
    if dist is None:
        return False
    if hasattr(dist, "choices"):
        return any(type(value) is type(c) and value == c for c in dist.choices)
    kind = int if type(dist).__name__ == "IntDistribution" else float
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and not isinstance(value, int)):
        return False
    return math.isfinite(value) and dist.low <= value <= dist.high


def override(key: str, value: Any) -> str:
    """The command-line override that gives ``key`` a sampled ``value``."""
    if isinstance(value, float):
        value = repr(value)
    elif isinstance(value, bool):
        value = str(value).lower()
    return f"{key}={value}"


def pruner_from(spec: dict | None, source: str = "The study's pruner"):
    """The pruner a study's stored spec names, built only from Optuna's own pruners: the whole
    spec is checked (a pruner that wraps another, e.g. PatientPruner, too), since a journal is
    data."""
    import optuna
    from hydra.utils import instantiate

    from ganrun.config import allow_building
    from ganrun.trust import target_nodes

    if not spec:
        return optuna.pruners.NopPruner()
    check_pruner(spec, source)
    for node in target_nodes(spec):
        allow_building(str(node["_target_"]))
    try:
        return instantiate(spec)
    except Exception as err:
        raise UserError(f"{source} cannot be built ({' '.join(str(err).split())[:200]}). Check "
                        "its keys against Optuna's documentation of that pruner.") from None


def check_pruner(spec, source: str = "The study's pruner") -> None:
    """A ``UserError`` unless ``spec`` (None, or a config tree) builds Optuna pruners only."""
    from ganrun.trust import check_data

    if not spec:
        return
    if not isinstance(spec, dict) or "_target_" not in spec:
        raise UserError(f"{source} is not a pruner config ({str(spec)[:80]!r}): set "
                        "hparams_search.pruner to one of Optuna's pruners, or null for none.")
    target = str(spec.get("_target_", ""))
    if not is_pruner(target):
        raise UserError(f"{source} {target!r} is not one of Optuna's pruners "
                        f"({PRUNER_PREFIX}*). Set hparams_search.pruner to one of them (e.g. "
                        "optuna.pruners.MedianPruner), or null for no pruning.")
    check_data(spec, source, allowed=is_pruner)


def check_trial_folder(run_dir: str | Path) -> None:
    """For a trial folder resumed by hand: its trial file and its study's stored pruner, read
    as data before anything is written (a UserError for either)."""
    record = read_trial_file(run_dir)
    if record is not None:
        study = load(record["study_dir"], record["study"], write=False)
        check_pruner(study.user_attrs.get("pruner"))


def is_pruner(target: str) -> bool:
    """One of the pruner classes ``optuna.pruners`` exports, named exactly."""
    import optuna

    name = target.removeprefix(PRUNER_PREFIX)
    if not target.startswith(PRUNER_PREFIX) or name not in getattr(optuna.pruners, "__all__", ()):
        return False
    cls = getattr(optuna.pruners, name, None)
    return isinstance(cls, type) and issubclass(cls, optuna.pruners.BasePruner)


def write_trial_file(run_dir: Path, study_dir: Path, study_name: str, number: int,
                     metric: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"study_dir": str(study_dir.resolve()), "study": study_name, "trial": number,
              "metric": metric}
    write_text(run_dir / TRIAL_FILE, json.dumps(record, indent=1))


def read_trial_file(run_dir: str | Path) -> dict | None:
    """The study and trial a run folder reports to, or None for a run outside a study.

    A trial folder lies in its study's folder (``<study>/trial_<n>``): the study is that parent
    folder, which must already hold its journal, whatever ``trial.json`` names (the file is data:
    it never makes ganrun create or write a journal anywhere else; a study folder moved whole
    keeps working)."""
    path = Path(run_dir) / TRIAL_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
        record = {"study_dir": str(record["study_dir"]), "study": str(record["study"]),
                  "trial": int(record["trial"]), "metric": str(record["metric"])}
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError):
        raise UserError(f"{path} is not a trial file written by `ganrun tune`. Remove it to "
                        "train the run outside its study.") from None
    own_study = Path(run_dir).resolve().parent
    if not (own_study / STUDY_FILE).is_file():
        raise UserError(f"{path} says this run is a trial of a study, but its folder's parent "
                        f"({own_study}) holds no {STUDY_FILE}: a trial reports only to the study "
                        "whose folder holds it. Remove trial.json to train the run outside a "
                        "study, or continue the study with `ganrun tune`.")
    record["study_dir"] = str(own_study)
    return record


def finite(value) -> bool:
    return value is not None and math.isfinite(float(value))
