"""What a run folder recorded (``.hydra/overrides.yaml``, ``.hydra/hydra.yaml``), read as data.

A run folder may come from someone else (a shared sweep, a colleague's run to continue), so its
files are never taken as the user's own command line: ``overrides`` reads the recorded overrides
and refuses, before anything is composed, one that would build or load code: a ``_target_``
outside ganrun's allowlist (``ganrun.trust``), an interpolation, a Hydra setting (``hydra.*``:
callbacks, search path, environment of the job), or a config option named by a path. A config
folder recorded there is never used unless the user names it again (``config_dir_to_repeat``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from ganrun.errors import UserError

OVERRIDES = Path(".hydra") / "overrides.yaml"
HYDRA = Path(".hydra") / "hydra.yaml"
# A config group's option is a file name in a config folder, never a path.
OPTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# A reference to another key of the config (``${paths.output_dir}``, which ganrun tune records
# for each trial) reads nothing outside it; a resolver (``${oc.env:...}``) may, and is refused.
REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_.]*\}$")


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's plain data (``yaml.safe_load``: no tags that build objects)."""
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as err:
        raise UserError(f"{path} ({what}) cannot be read: {' '.join(str(err).split())[:200]}. "
                        "It is damaged or was not written by ganrun.") from None


def read_overrides(run_dir: Path) -> list[str]:
    """The overrides a run folder recorded: a list of strings, or a ``UserError``; [] when the
    folder has none."""
    path = Path(run_dir) / OVERRIDES
    if not path.is_file():
        return []
    saved = read_yaml(path, "the run's recorded command line")
    if saved is None:
        return []
    if not isinstance(saved, list) or not all(isinstance(o, str) for o in saved):
        raise UserError(f"{path} is not a list of overrides (it holds "
                        f"{type(saved).__name__} data). The run folder is damaged or was not "
                        "written by ganrun.")
    return saved


def overrides(run_dir: Path, trust: Iterable[str] = ()) -> list[str]:
    """The recorded overrides of ``run_dir``, each checked as data (``check``)."""
    recorded = read_overrides(run_dir)
    check(recorded, f"The run folder {run_dir} ({OVERRIDES})", trust)
    return recorded


def check(recorded: list[str], source: str, trust: Iterable[str] = ()) -> None:
    """A ``UserError`` for the first recorded override that would build, load or resolve
    something ganrun does not allow from a file."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ganrun.trust import check_data

    try:
        parsed = OverridesParser.create().parse_overrides(recorded)
    except Exception as err:
        raise UserError(f"{source} holds an override that cannot be read "
                        f"({' '.join(str(err).split())[:200]}). The folder is damaged or was "
                        "not written by ganrun.") from None
    tree: dict = {}
    for override in parsed:
        key = override.key_or_group
        line = override.input_line
        if override.is_sweep_override():
            raise _refused(source, line, "it is a sweep, which a run never records")
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            raise _refused(source, line, "it changes Hydra's own settings (callbacks, search "
                                         "path, the job's environment), which ganrun never "
                                         "records for a run")
        if override.package:
            raise _refused(source, line, "it moves a config package, which ganrun never "
                                         "records for a run")
        value = override.value()
        if isinstance(value, str) and REFERENCE.match(value):
            value = "<a reference to another key>"
        if _is_group(key):
            _check_option(source, line, value)
            continue
        alone: dict = {}
        _insert(alone, key.split("."), value)
        check_data(alone, source, trust)  # each value, even one a later override replaces
        _insert(tree, key.split("."), value)
    check_data(tree, source, trust)  # what one node gathers from several overrides


def _is_group(key: str) -> bool:
    """``model=dcgan`` or ``hparams_search/pruner=median``: an option of a config group."""
    from ganrun.config import config_dir

    return "/" in key or (config_dir() / key).is_dir()


def _check_option(source: str, line: str, value: Any) -> None:
    names = value if isinstance(value, list) else [value]
    for name in names:
        if name is None:
            continue
        if not isinstance(name, str) or not OPTION_NAME.match(name) or ".." in name:
            raise _refused(source, line, "a config option is a name, not a path or a value of "
                                         "another kind")


def _insert(tree: dict, keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _refused(source: str, line: str, why: str) -> UserError:
    shown = " ".join(line.split())[:120]
    return UserError(f"{source} records the override `{shown}`, which was refused: {why}. A run "
                     "folder from someone else is read as data. Do not resume this folder; "
                     "start a new run with your own command line.")


def recorded_config_dir(run_dir: Path) -> str | None:
    """The ``--config-dir`` the run was trained with, as its ``.hydra/hydra.yaml`` says (or
    None)."""
    path = Path(run_dir) / HYDRA
    if not path.is_file():
        return None
    saved = read_yaml(path, "Hydra's record of the run")
    try:
        sources = saved["hydra"]["runtime"]["config_sources"]
        folders = [s["path"] for s in sources
                   if isinstance(s, dict) and s.get("provider") == "command-line"
                   and isinstance(s.get("path"), str) and s.get("path")]
    except (KeyError, TypeError):
        return None
    return folders[0] if folders else None
