"""Command-line overrides checked before Hydra runs them: a key that is not in the config gets
ganrun's one-paragraph error with "Did you mean" (Hydra's own hint, "To append to your config
use +lr=...", adds a key that nothing reads)."""

import re
from pathlib import Path

import yaml

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from ganrun.config import closest, config_dir
from ganrun.errors import UserError
from ganrun.private_apis import compose_like_a_run

MISSING_KEY = re.compile(r"Could not override '([^']+)'")
MISSING_OPTION = re.compile(r"Could not (?:find|load) '([^']+)/([^'/]+)'")


def compose(config_name: str, overrides: list[str], user_dir: str | None) -> DictConfig:
    """The config Hydra composes for these overrides, ``hydra`` node included (as for a run)."""
    return compose_like_a_run(str(config_dir()), user_dir, config_name, overrides)


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of a sweep's first job (``lr=1e-4,2e-4`` -> ``lr=1e-4``); a sweep that
    cannot be listed (Optuna's ``interval(...)``) is left out."""
    first = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            first.append(override.input_line)
            continue
        try:
            value = next(iter(override.sweep_string_iterator()))
        except Exception:
            continue
        first.append(f"{override.get_key_element()}={value}")
    return first


def check_overrides(prog: str, config_name: str, overrides: list[str],
                    user_dir: str | None) -> DictConfig | None:
    """The composed config of the (first) job; a ``UserError`` for a key the config does not
    have, an option a group does not have, or a YAML file that cannot be read. None where
    composing fails otherwise: Hydra then reports that itself."""
    try:
        return compose(config_name, first_job(overrides), user_dir)
    except ConfigCompositionException as err:
        match = MISSING_KEY.search(str(err))
        option = MISSING_OPTION.search(str(err))
        if match is None and option is None:
            raise UserError(f"The config cannot be composed: {_first_line(err)}. Fix the "
                            "override or the YAML file it names.") from None
        if option is not None:
            raise UserError(unknown_option(prog, *option.groups(), user_dir)) from None
        key = match.group(1)
        cfg = _without(config_name, first_job(overrides), key, user_dir)
        raise UserError(_unknown_key(prog, key, _given(overrides, key), cfg)) from None
    except yaml.YAMLError as err:
        raise UserError(f"A config file is not valid YAML: {_first_line(err)}. Fix that "
                        "file (in --config-dir or conf/).") from None
    except Exception:
        return None


def _first_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text.split(" Available options:")[0].split(" Config search path:")[0][:400]


def group_options(group: str, user_dir: str | None) -> list[str]:
    """The options of a config group: ganrun's own and those of ``--config-dir``."""
    folders = [config_dir() / group] + ([Path(user_dir) / group] if user_dir else [])
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def unknown_option(prog: str, group: str, option: str, user_dir: str | None) -> str:
    options = group_options(group, user_dir)
    if not options:
        return (f"`{group}` is not a config group, so `{group}={option}` selects "
                f"nothing. `{prog} --help` lists the groups.")
    guess = closest(option, options)
    hint = f" Did you mean `{group}={guess}`?" if guess else ""
    return (f"`{option}` is not an option of the `{group}` group.{hint} Its options: "
            f"{', '.join(options)} (add your own with --config-dir DIR holding "
            f"{group}/<name>.yaml).")


def _without(config_name: str, overrides: list[str], key: str, user_dir: str | None) -> DictConfig:
    # Another misspelled key may follow: then the defaults alone give the suggestions.
    try:
        return compose(config_name, [o for o in overrides if _key(o) != key], user_dir)
    except Exception:
        return compose(config_name, [], user_dir)


def _unknown_key(prog: str, key: str, given: str, cfg: DictConfig) -> str:
    guess = nearest_key(key, cfg)
    fix = f" Did you mean `{guess}`? Write `{guess}={given.split('=', 1)[1]}`." if guess else ""
    return (f"`{key}` is not a key of the config, so `{given}` would set nothing.{fix} "
            f"`{prog} --cfg job` shows every key; options of a group are set with group=option "
            f"(`{prog} --help` lists them).")


def nearest_key(key: str, cfg: DictConfig) -> str | None:
    """A sibling spelled alike (``trainer.max_step`` -> ``trainer.max_steps``), else the
    shallowest key of the same name (``lr`` -> ``optimizer.lr``), else the nearest path."""
    # Hydra's own settings are never a suggestion: `dataset.root` is not `hydra....root`.
    paths = [p for p in _paths(OmegaConf.to_container(cfg, resolve=False))
             if p != "hydra" and not p.startswith("hydra.")]
    parent, _, leaf = key.rpartition(".")
    sibling = closest(key, [p for p in paths if p.rpartition(".")[0] == parent])
    same_name = sorted((p for p in paths if p.rpartition(".")[2] == leaf),
                       key=lambda p: (p.count("."), p))
    return sibling or (same_name[0] if same_name else closest(key, paths))


def _paths(node, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            yield path
            yield from _paths(value, f"{path}.")


def _key(override: str) -> str:
    return override.split("=", 1)[0]


def _given(overrides: list[str], key: str) -> str:
    return next((o for o in overrides if _key(o) == key), key + "=...")
