"""Finding the configs and validating a composed config before anything is built."""

import difflib
import inspect
import math
import typing
from pathlib import Path
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganrun import resolvers
from ganrun.errors import UserError
from ganrun.schema import TrainConfig

resolvers.register()  # at import, so that launcher workers that load the task have them too

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def config_dir() -> Path:
    """``conf/`` inside an installed wheel, else the repository's top-level ``conf/``."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else packaged.parent.parent / "conf"


def validate(cfg: DictConfig) -> DictConfig:
    """The config merged onto its schema, with every ``_target_`` node's keys and types checked.

    Raises ``UserError`` naming the offending key for a misspelled key, a wrong type or an
    out-of-range value, so that a typo fails before any data is read.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
        resolved = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as err:
        raise UserError(_describe(err)) from None
    _check_targets(resolved, "")
    _check_ranges(resolved)
    return merged


def validate_eval(cfg: DictConfig) -> DictConfig:
    """``ganrun eval``'s config merged onto its schema: a UserError naming a mistyped key."""
    from ganrun.schema import EvalConfig

    try:
        merged = OmegaConf.merge(OmegaConf.structured(EvalConfig), cfg)
        resolved = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as err:
        raise UserError(_describe(err, "ganrun eval --help")) from None
    _check_targets(resolved, "")
    if resolved["num_samples"] < 1:
        raise UserError(f"num_samples must be at least 1, got {resolved['num_samples']}.")
    if not 0 <= resolved["seed"] < 2**32:
        raise UserError(f"seed must be an integer from 0 to {2**32 - 1}, got {resolved['seed']}.")
    return merged


def _describe(err: OmegaConfBaseException, show: str = "ganrun train --cfg job") -> str:
    key = getattr(err, "full_key", None) or "?"
    reason = str(err).splitlines()[0]
    hint = ""
    parent = getattr(err, "parent_node", None)
    if "not in" in reason and parent is not None:
        leaf = key.rsplit(".", 1)[-1]
        hint = _suggest(leaf, list(parent.keys()))
    return f"Invalid config at `{key}`: {reason}.{hint} Fix the key or value on the command " \
           f"line or in the YAML file that sets it (`{show}` shows the config)."


def closest(name: str, valid: list[str]) -> str | None:
    """The valid name nearest to a misspelled one, if any is near enough."""
    close = difflib.get_close_matches(name, valid, n=1)
    return close[0] if close else None


def _suggest(name: str, valid: list[str]) -> str:
    close = closest(name, valid)
    did_you_mean = f" Did you mean `{close}`?" if close else ""
    return f"{did_you_mean} Valid keys: {', '.join(sorted(valid))}."


def _check_targets(node: Any, path: str) -> None:
    if isinstance(node, dict):
        if "_target_" in node:
            _check_target(node, path)
            allow_building(node["_target_"])
        for key, value in node.items():
            if key not in HYDRA_KEYS:
                _check_targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_targets(value, f"{path}[{i}]")


def allow_building(target: str) -> None:
    """hydra-core 1.4 warns (and 1.5 will refuse) when ``instantiate`` builds a target that no
    execution whitelist names. A target is checked here only inside a config that is the user's
    own (composed from the command line and their config folders) or that has passed
    ``ganrun.trust``'s allowlist (a file from others), so the checked targets are whitelisted
    for the rest of the command; this widens nothing. hydra-core 1.3 has no whitelist."""
    try:
        from hydra.utils import execution_whitelist
    except ImportError:
        return
    # Left open: it lasts as long as the command (or the sweep job: Hydra runs each job in a
    # context of its own, where its config is checked again).
    execution_whitelist([target]).__enter__()


def _check_target(node: dict, path: str) -> None:
    target = node["_target_"]
    try:
        obj = get_object(target)
        params = inspect.signature(obj).parameters
    except Exception as err:
        raise UserError(f"`{path}._target_` is '{target}', which cannot be imported ({err}). "
                        "Check its spelling and that the package providing it is installed.")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for key, value in node.items():
        if key in HYDRA_KEYS:
            continue
        if key not in params:
            raise UserError(f"Unknown key `{path}.{key}` for {target}."
                            f"{_suggest(key, [p for p in params if p != 'self'])}")
        _check_type(f"{path}.{key}", value, _hints(obj).get(key))


def _hints(obj) -> dict:
    try:
        return typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except Exception:  # annotations that cannot be evaluated are simply not type-checked
        return {}


def _check_type(path: str, value: Any, hint: Any) -> None:
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) \
        else (hint,)
    simple = [t for t in allowed if t in (int, float, bool, str, type(None))]
    if not simple or len(simple) != len(allowed):
        return  # containers, callables, modules: left to the object itself
    if not any(_fits(value, t) for t in simple):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in simple)
        raise UserError(f"`{path}` must be {names}, got {value!r}.")


_UnionType = type(int | None)


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_ranges(cfg: dict) -> None:
    trainer = cfg["trainer"]
    if trainer["max_steps"] is None and trainer["max_epochs"] is None:
        raise UserError("Neither trainer.max_steps nor trainer.max_epochs is set, so the run "
                        "would never end. Set one of them, e.g. trainer.max_steps=10000.")
    for key in ("max_steps", "max_epochs", "n_critic"):
        if trainer[key] is not None and trainer[key] < 1:
            raise UserError(f"trainer.{key} must be at least 1, got {trainer[key]}.")
    if trainer["d_warmup_steps"] < 0:
        raise UserError(f"trainer.d_warmup_steps must be 0 or more, got "
                        f"{trainer['d_warmup_steps']}.")
    if cfg["model"]["latent_dim"] < 1:
        raise UserError(f"model.latent_dim must be at least 1, got {cfg['model']['latent_dim']}.")
    for side in ("generator", "discriminator"):
        lr = cfg["optimizer"][side].get("lr")
        if lr is not None and not 0 < lr < math.inf:
            raise UserError(f"The {side} learning rate must be positive and finite, got "
                            f"{lr}. Set optimizer.lr (both) or optimizer.{side}.lr to a value "
                            "> 0, e.g. 2e-4.")
    _check_optimizers(cfg)
    seed = cfg.get("seed")
    if seed is not None and not 0 <= seed < 2**32:
        raise UserError(f"seed must be an integer from 0 to {2**32 - 1} (the range numpy and "
                        f"CUDA accept), got {seed}. Use e.g. seed=0, or leave it out to draw one.")


def _check_optimizers(cfg: dict) -> None:
    """Each optimizer built once on a stand-in parameter, so that settings it refuses (betas
    outside [0, 1), a NaN eps...) fail now, named, rather than when training starts."""
    import torch
    from hydra.utils import instantiate

    for side in ("generator", "discriminator"):
        node = (cfg.get("optimizer") or {}).get(side)
        if not isinstance(node, dict) or "_target_" not in node:
            continue
        for key in ("betas",):
            values = node.get(key)
            if isinstance(values, list) and not all(
                    isinstance(v, (int, float)) and 0 <= v < 1 for v in values):
                raise UserError(f"optimizer.{side}.{key} must be numbers in [0, 1), got "
                                f"{values}. Adam's usual betas are [0.5, 0.999] or [0.0, 0.99].")
        try:
            made = instantiate(node)
            if callable(made):
                made([torch.zeros(1, requires_grad=True)])
        except (ValueError, TypeError, RuntimeError) as err:
            raise UserError(f"optimizer.{side} cannot be built with these settings: "
                            f"{' '.join(str(err).split())[:200]}. Fix them on the command line "
                            "or in the optimizer's YAML.") from None


def check_target_nodes(node: Any, path: str) -> None:
    """The keys and types of every ``_target_`` node in ``node`` (a plain dict tree) checked
    against the signatures of their callables; a ``UserError`` names the first bad key."""
    _check_targets(node, path)
