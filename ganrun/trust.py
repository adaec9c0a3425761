"""What a config read from a file (a checkpoint, an export) may ask ganrun to build.

A config composed from the command line is the user's own choice. A config stored inside a
file from someone else is data: building its objects calls whatever its ``_target_`` strings
name, and resolving it would run its ``${...}`` interpolations (``${oc.env:...}`` reads the
environment). So before anything in such a file is imported, built or resolved, its whole tree
is checked (``check_data``):

- every ``_target_`` is a callable ganrun itself ships configs for, or lies under a module
  prefix the user trusts on the command line (``trust_targets=[my_pkg.nets]``) or in the
  environment (``GANRUN_TRUST_TARGETS=my_pkg.nets,other_pkg``); Python's standard library is
  never trusted, whatever the user lists;
- ``_partial_: true`` only where ganrun's own configs build that callable partially (a trusted
  prefix may use it freely); ``_args_`` only under a trusted prefix;
- no string holds an interpolation (``${``).

The file can never widen the list.
"""

import functools
import os
import sys
from typing import Any, Iterable, Iterator

import yaml

from ganrun.errors import UserError

ENV = "GANRUN_TRUST_TARGETS"
NEVER = frozenset(sys.stdlib_module_names) | {"builtins", "__main__", "__builtin__"}


@functools.lru_cache(maxsize=1)
def shipped() -> tuple[frozenset[str], frozenset[str]]:
    """Every ``_target_`` named by a YAML file in ganrun's own ``conf/``, and those of them
    built with ``_partial_: true``: adding an option (one class, one YAML) allows its class
    without an edit here."""
    from ganrun.config import config_dir

    targets: set[str] = set(inference_classes()) | callback_classes()
    partial: set[str] = set()
    for path in config_dir().rglob("*.yaml"):
        for node in target_nodes(yaml.safe_load(path.read_text()) or {}):
            targets.add(str(node["_target_"]))
            if node.get("_partial_") is True:
                partial.add(str(node["_target_"]))
    return frozenset(targets), frozenset(partial)


def inference_classes() -> set[str]:
    """The inference classes of ganrun's own tasks (what an export's ``model`` names): every
    subclass of ``Inference`` defined in ganrun, found by importing ganrun's task modules (its
    own code, never a name read from a file)."""
    import importlib
    import pkgutil

    import ganrun.tasks
    from ganrun.inference.model import Inference

    for module in pkgutil.iter_modules(ganrun.tasks.__path__):
        importlib.import_module(f"ganrun.tasks.{module.name}")
    found, todo = set(), [Inference]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("ganrun."):
            found.add(f"{cls.__module__}.{cls.__qualname__}")
    return found


def callback_classes() -> set[str]:
    """The training callbacks ganrun defines (``ganrun.callbacks.*``): some join a run's config
    from ganrun's own code rather than a YAML (``ganrun tune`` adds its pruning callback to each
    trial), and a checkpoint's config names them."""
    import importlib
    import inspect
    import pkgutil

    import pytorch_lightning as pl

    import ganrun.callbacks

    found = set()
    for info in pkgutil.iter_modules(ganrun.callbacks.__path__):
        module = importlib.import_module(f"ganrun.callbacks.{info.name}")
        found |= {f"{cls.__module__}.{cls.__qualname__}"
                  for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, pl.Callback) and cls.__module__ == module.__name__}
    return found


def shipped_targets() -> frozenset[str]:
    return shipped()[0]


def target_nodes(node: Any) -> Iterator[dict]:
    """Every dict with a ``_target_`` inside a config tree (dicts and lists)."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield node
        for value in node.values():
            yield from target_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from target_nodes(value)


def targets_in(node: Any) -> Iterable[str]:
    """The ``_target_`` strings anywhere inside a config tree."""
    return (str(found["_target_"]) for found in target_nodes(node))


def trusted_prefixes(extra: Iterable[str] = ()) -> list[str]:
    """Module prefixes the user trusts: ``extra`` (the command line) and the environment."""
    from_env = [p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()]
    return [*from_env, *(str(p).strip() for p in extra if str(p).strip())]


def in_standard_library(target: str) -> bool:
    return target.split(".", 1)[0] in NEVER


def is_trusted(target: str, prefixes: Iterable[str]) -> bool:
    if in_standard_library(target):
        return False
    return any(target == p or target.startswith(p.rstrip(".") + ".") for p in prefixes)


def is_allowed(target: str, prefixes: Iterable[str]) -> bool:
    return target in shipped_targets() or is_trusted(target, prefixes)


def check_data(config: Any, source: str, trust: Iterable[str] = ()) -> None:
    """A ``UserError`` for the first thing in ``config`` (a plain tree of dicts, lists and
    values read from a file; ``source`` names it) that would build or resolve something
    ganrun does not allow. Nothing named in the config is imported before this passes."""
    prefixes = trusted_prefixes(trust)
    _, partial = shipped()
    for path, node in walk(config, ""):
        if isinstance(node, str) and "${" in node:
            raise UserError(
                f"{source} holds an interpolation at `{path}` ({node[:60]!r}). A file from "
                "someone else is read as plain data: its values are never resolved (they could "
                "read your environment or files). Do not use this file; ask its author for an "
                "unedited checkpoint or export.")
        if not isinstance(node, dict) or "_target_" not in node:
            continue
        target = str(node["_target_"])
        if not is_allowed(target, prefixes):
            raise refused(source, path, target)
        trusted = is_trusted(target, prefixes)
        if node.get("_partial_") not in (None, False) and target not in partial and not trusted:
            raise UserError(
                f"{source} asks to build '{target}' partially (`{path}._partial_`), which "
                "ganrun's own configs never do, so it was refused. Do not use this file; ask "
                "its author for an unedited checkpoint or export.")
        if "_args_" in node and not trusted:
            raise UserError(
                f"{source} passes positional arguments (`{path}._args_`) to '{target}', which "
                "ganrun's own configs never do, so it was refused. Do not use this file; ask "
                "its author for an unedited checkpoint or export.")


def walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path or "<top>", node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def refused(source: str, path: str, target: str) -> UserError:
    what = f"{source} asks to build '{target}', which is not one of ganrun's own classes " \
           f"(at `{path}`), so it was not imported or run: a file's config may only name the " \
           "networks, losses and other options ganrun ships."
    if in_standard_library(target):
        return UserError(f"{what} '{target}' belongs to Python's standard library, which no file "
                         "may name and which cannot be trusted. Do not use this file; ask its "
                         "author for an unedited checkpoint or export.")
    module = target.rsplit(".", 1)[0] or target
    return UserError(f"{what} If this is your own code (an option of your --config-dir) and you "
                     f"trust the file, allow your package explicitly: add "
                     f"trust_targets=[{module}] to the command, or set {ENV}={module}.")
