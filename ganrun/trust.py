"""What a config read from a file (a checkpoint, an export, a run folder, a study journal) may
ask ganrun to build.

A config composed from the command line is the user's own choice. A config stored inside a
file from someone else is data: building its objects calls whatever its ``_target_`` strings
name, and resolving it would run its ``${...}`` interpolations (``${oc.env:...}`` reads the
environment). So before anything in such a file is imported, built or resolved, its whole tree
is checked (``check_data``):

- every ``_target_`` is a callable ganrun itself ships configs for (an exact name), or a class
  or function *defined* in a package the user trusts on the command line
  (``trust_targets=[my_pkg]``, or ``[my_pkg.nets]``, or the exact ``[my_pkg.nets.Generator]``)
  or in the environment (``GANRUN_TRUST_TARGETS=my_pkg``). A trusted package is trusted for
  what its own modules define, never for names reached through their attributes
  (``my_pkg.nets.torch.load`` is torch's ``load``, which ``my_pkg`` merely imports). Python's
  standard library and ganrun's own functions are never trusted, whatever the user lists;
- ``_partial_: true`` only where ganrun's own configs build that callable partially (or on a
  trusted package's own class or function); ``_args_`` never (ganrun's configs do not use it);
- no argument turns a safe load into an unsafe one (``weights_only`` other than true);
- no string holds an interpolation (``${``).

The file can never widen the list.
"""

import functools
import importlib
import importlib.util
import inspect
import os
import sys
from typing import Any, Callable, Iterable, Iterator

import yaml

from ganrun.errors import UserError

ENV = "GANRUN_TRUST_TARGETS"
NEVER = frozenset(sys.stdlib_module_names) | {"builtins", "__main__", "__builtin__"}
# ganrun's own callables beyond its shipped options (file writers, loaders) and those of the
# libraries it is built on (torch.load, torch.save, numpy.load...) are never trusted: what
# ganrun's configs name of them is allowed by its exact name already. trust_targets is for
# packages of the user's own.
LIBRARIES = frozenset({
    "ganrun", "torch", "torchvision", "torchaudio", "pytorch_lightning", "lightning",
    "lightning_fabric", "lightning_utilities", "hydra", "omegaconf", "numpy", "scipy", "optuna",
    "torchmetrics", "torch_fidelity", "PIL", "matplotlib", "yaml", "safetensors", "tensorboard",
    "mlflow", "wandb", "gradio", "sklearn", "pandas", "joblib", "submitit", "sqlalchemy",
    "rich", "requests", "urllib3", "setuptools", "pip", "pkg_resources", "dill", "cloudpickle"})
UNTRUSTABLE = NEVER | LIBRARIES
# Arguments that decide whether a callable runs code from a file, refused whatever the target.
UNSAFE_ARGUMENTS = {"weights_only": True}  # key -> the only value a file may give it


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


def untrustable(target: str) -> bool:
    return target.split(".", 1)[0] in UNTRUSTABLE


def is_trusted(target: str, prefixes: Iterable[str]) -> bool:
    """Whether ``target`` is a class or function defined in a module the user trusts (a
    prefix ``p`` trusts the modules ``p`` and ``p.*``; an entry equal to ``target`` trusts that
    one callable). Only modules inside a trusted prefix are imported to find out: the user
    chose to run their code."""
    if untrustable(target):
        return False
    for prefix in (p.rstrip(".") for p in prefixes):
        if target == prefix or target.startswith(prefix + "."):
            if _defined_in(target, prefix):
                return True
    return False


def _defined_in(target: str, prefix: str) -> bool:
    """``target`` is ``module.qualname`` of a class or function whose own ``__module__`` is
    ``module``, a module inside ``prefix`` (or the parent module of an exact entry)."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name, qualname = ".".join(parts[:split]), ".".join(parts[split:])
        inside = module_name == prefix or module_name.startswith(prefix + ".") or \
            target == prefix
        if not inside:
            return False
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        obj = module
        for name in parts[split:]:
            obj = getattr(obj, name, None)
        return (inspect.isclass(obj) or inspect.isfunction(obj)) and \
            getattr(obj, "__module__", None) == module_name and \
            getattr(obj, "__qualname__", None) == qualname
    return False


def is_allowed(target: str, prefixes: Iterable[str]) -> bool:
    return target in shipped_targets() or is_trusted(target, prefixes)


def check_data(config: Any, source: str, trust: Iterable[str] = (),
               allowed: Callable[[str], bool] | None = None) -> None:
    """A ``UserError`` for the first thing in ``config`` (a plain tree of dicts, lists and
    values read from a file; ``source`` names it) that would build or resolve something
    ganrun does not allow. Nothing named in the config is imported before this passes.
    ``allowed`` replaces the allowlist where a file may name one kind of object only (a study's
    pruner); it never allows ``_partial_`` or ``_args_``."""
    prefixes = [] if allowed else trusted_prefixes(trust)
    _, partial = shipped() if allowed is None else (frozenset(), frozenset())
    for path, node in walk(config, ""):
        if isinstance(node, str) and "${" in node:
            raise UserError(
                f"{source} holds an interpolation at `{path}` ({node[:60]!r}). A file from "
                "someone else is read as plain data: its values are never resolved (they could "
                "read your environment or files). Do not use this file; ask its author for an "
                "unedited checkpoint or export.")
        if not isinstance(node, dict):
            continue
        for key, safe in UNSAFE_ARGUMENTS.items():
            if key in node and node[key] is not safe:
                raise UserError(
                    f"{source} sets `{path + '.' if path != '<top>' else ''}{key}` to "
                    f"{node[key]!r}: that argument would let a load run code from a file, so the "
                    "file was refused before anything in it was built. Do not use this file; ask "
                    "its author for an unedited one.")
        if "_target_" not in node:
            continue
        target = str(node["_target_"])
        if allowed is not None and not allowed(target):
            raise UserError(f"{source} asks to build '{target}' (at `{path}`), which is not "
                            "allowed there, so it was not imported or run. Do not use this file.")
        if allowed is None and not is_allowed(target, prefixes):
            raise refused(source, path, target, prefixes)
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


def refused(source: str, path: str, target: str, prefixes: Iterable[str] = ()) -> UserError:
    what = f"{source} asks to build '{target}', which is not one of ganrun's own classes " \
           f"(at `{path}`), so it was not imported or run: a file's config may only name the " \
           "networks, losses and other options ganrun ships."
    if in_standard_library(target):
        return UserError(f"{what} '{target}' belongs to Python's standard library, which no file "
                         "may name and which cannot be trusted. Do not use this file; ask its "
                         "author for an unedited checkpoint or export.")
    if untrustable(target):
        return UserError(f"{what} '{target.split('.', 1)[0]}' is ganrun or a library ganrun is "
                         "built on: its callables are allowed only where ganrun's own configs "
                         "name them, and trust_targets cannot widen that (it is for packages of "
                         "your own). Do not use this file; ask its author for an unedited "
                         "checkpoint or export.")
    under = [p for p in prefixes if target.startswith(p.rstrip(".") + ".") or target == p]
    if under:
        return UserError(f"{what} You trust '{under[0]}', but '{target}' is not a class or "
                         f"function that '{under[0]}' defines: it is reached through a name its "
                         "modules import (such as torch or os), and a trusted package is trusted "
                         "for its own code only. Do not use this file; ask its author for an "
                         "unedited one.")
    # The advice names the top-level package only, never a prefix the file chose, and only
    # when such a package is installed (looking it up imports nothing).
    package = target.split(".", 1)[0]
    installed = importlib.util.find_spec(package) is not None
    advice = (f" If '{package}' is a package of your own (the options of your --config-dir) and "
              f"you trust this file, allow the classes and functions it defines: add "
              f"trust_targets=[{package}] to the command, or set {ENV}={package}. Trusting it "
              "never allows what its modules import (torch, os, ...). Otherwise do not use this "
              "file." if installed else f" No installed package provides '{package}': do not use "
              "this file.")
    return UserError(f"{what}{advice}")
