"""``key=value`` command-line arguments checked against a dataclass schema.

Commands that only read a few options (``ganrun sample``) take them in the same ``key=value``
style as ``ganrun train`` without being Hydra apps: no run folder, no log files, no config
composition, just typed values with clear errors.
"""

import difflib
import os
import sys
from dataclasses import fields

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganrun.errors import UserError


def parse(argv: list[str], schema: type, prog: str, extra: bool = False,
          valid_elsewhere: tuple[str, ...] = (), what: str = ""):
    """The schema's defaults overridden by ``argv``; a ``UserError`` for malformed arguments,
    unknown keys, wrong types and missing required keys. With ``extra``, keys the schema lacks
    are returned apart, ``(config, their arguments)``, for a second schema known later (a
    model's own sampling keys); ``valid_elsewhere`` names keys of the first schema, offered as
    suggestions when the second parse meets an unknown key."""
    valid = [f.name for f in fields(schema)]
    leftovers = []
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" not in arg or not key:
            raise UserError(f"{prog}: '{arg}' is not a key=value argument. Write options as "
                            f"key=value, e.g. num=16; the keys are {', '.join(valid)}.")
        if key in valid:
            continue
        if extra:
            leftovers.append(arg)
            continue
        known = valid + list(valid_elsewhere)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise UserError(f"{prog}: unknown key `{key}`{what}.{hint} Valid keys: "
                        f"{', '.join(known)}. See `{prog} --help`.")
    try:
        given = [arg for arg in argv if arg not in leftovers]
        cfg = OmegaConf.merge(OmegaConf.structured(schema), values(given, schema, prog))
        OmegaConf.to_container(cfg, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0].rstrip(".")
        raise UserError(f"{prog}: invalid value for `{key}`: {reason}. Fix it on the command "
                        f"line (see `{prog} --help`).") from None
    return (cfg, leftovers) if extra else cfg


def values(args: list[str], schema: type, prog: str) -> dict:
    """``key=value`` arguments as a dict: a text key takes its value as typed (``out=!x``,
    ``text={x`` and ``text=: x`` are text, not YAML); other keys are read as YAML scalars or
    lists (``num=16``, ``trust_targets=[a,b]``), a ``UserError`` naming the key otherwise."""
    import typing

    hints = typing.get_type_hints(schema)
    found = {}
    for arg in args:
        key, value = arg.split("=", 1)
        hint = hints.get(key)
        union = typing.get_origin(hint) in (typing.Union, type(int | None))
        options = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
        if options == [str]:
            found[key] = None if value in ("null", "~") and type(None) in \
                typing.get_args(hint) else value
            continue
        try:
            found[key] = OmegaConf.to_container(OmegaConf.from_dotlist([arg]))[key]
        except Exception as err:  # a YAML error: `num=[3`, `seed=*x`...
            reason = " ".join(str(getattr(err, "problem", None) or err).split())[:120]
            raise UserError(f"{prog}: invalid value for `{key}`: '{value[:60]}' cannot be read "
                            f"({reason}). Fix it on the command line (see `{prog} --help`).") \
                from None
    return found


def run_command(argv: list[str], schema: type, prog: str, help_text: str, action):
    """A ``key=value`` command: ``--help``, then ``action(config)``; a ``UserError`` becomes
    one paragraph on stderr and exit 2. Returns ``(config, action's result)``, or None after
    ``--help``."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(help_text)
        return None
    try:
        cfg = parse(argv, schema, prog)
        return cfg, action(cfg)
    except UserError as err:
        if os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"{prog}: error: {str(err).removeprefix(prog + ': ')}", file=sys.stderr, flush=True)
        sys.exit(2)
