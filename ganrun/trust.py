"""Which ``_target_`` callables a config read from a file (a checkpoint, an export) may name.

A config composed from the command line is the user's own choice. A config stored inside a
file from someone else is data: building its objects calls whatever its ``_target_`` strings
name, so only callables ganrun itself ships configs for are built, plus the module prefixes
the user trusts on the command line (``trust_targets=[my_pkg.nets]``) or in the environment
(``GANRUN_TRUST_TARGETS=my_pkg.nets,other_pkg``). The file can never widen the list.
"""

import functools
import os
from typing import Any, Iterable

import yaml

from ganrun.errors import UserError

ENV = "GANRUN_TRUST_TARGETS"


@functools.lru_cache(maxsize=1)
def shipped_targets() -> frozenset[str]:
    """Every ``_target_`` named by a YAML file in ganrun's own ``conf/``: adding an option
    (one class, one YAML) allows its class without an edit here."""
    from ganrun.config import config_dir

    found: set[str] = set()
    for path in config_dir().rglob("*.yaml"):
        found.update(targets_in(yaml.safe_load(path.read_text()) or {}))
    return frozenset(found)


def targets_in(node: Any) -> Iterable[str]:
    """The ``_target_`` strings anywhere inside a config tree (dicts and lists)."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None:
            yield str(target)
        for value in node.values():
            yield from targets_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from targets_in(value)


def trusted_prefixes(extra: Iterable[str] = ()) -> list[str]:
    """Module prefixes the user trusts: ``extra`` (the command line) and the environment."""
    from_env = [p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()]
    return [*from_env, *(str(p).strip() for p in extra if str(p).strip())]


def is_allowed(target: str, prefixes: Iterable[str]) -> bool:
    if target in shipped_targets():
        return True
    return any(target == p or target.startswith(p.rstrip(".") + ".") for p in prefixes)


def check_targets(config: Any, source: str, trust: Iterable[str] = ()) -> None:
    """A ``UserError`` for the first ``_target_`` in ``config`` that is neither shipped with
    ganrun nor trusted by the user; ``source`` names the file in the message. Nothing named in
    the config is imported before this check passes."""
    prefixes = trusted_prefixes(trust)
    for target in targets_in(config):
        if not is_allowed(target, prefixes):
            raise UserError(
                f"{source} asks to build '{target}', which is not one of ganrun's own classes, "
                "so it was not imported or run: a file's config may only name the networks, "
                "losses and other options ganrun ships. If this is your own code (an option of "
                f"your --config-dir) and you trust the file, allow it explicitly: add "
                f"trust_targets=[{target.rsplit('.', 1)[0] or target}] to the command, or set "
                f"{ENV}={target.rsplit('.', 1)[0] or target}.")
