"""What the task builders share: networks built from the model config (each remembers the
config it was built from, so that an export can rebuild it), class conditioning, the
regularizers, and the checks that refuse a model or an option a task cannot use, before
anything is built."""

from __future__ import annotations

import inspect
import json
from typing import Callable

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganrun.errors import UserError


def build_net(node, **kwargs) -> nn.Module:
    """``instantiate(node, **kwargs)``; the network keeps ``ganrun_config``, the plain config
    that builds it again (an export's ``nets`` entry). Arguments that are objects (a
    discriminator's conditioning head) are not plain data: such a network is not exportable."""
    net = instantiate(node, **kwargs)
    config = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else \
        dict(node)
    plain = {key: value for key, value in kwargs.items() if is_plain(value)}
    net.ganrun_config = {**config, **plain} if len(plain) == len(kwargs) else None
    return net


def is_plain(value) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


def regularizers(cfg: DictConfig) -> dict:
    # .get: checkpoints of older versions have no such key
    return {name: instantiate(node) for name, node in (cfg.get("regularizers") or {}).items()
            if node is not None}


def conditioning(cfg: DictConfig, shape: dict) -> tuple[dict, dict]:
    """The extra arguments of G and D for a class-conditional model (``conditioning=...``)."""
    if not cfg.model.get("conditioning"):
        return {}, {}
    classes = shape.get("num_classes") or 0
    if classes < 2:
        raise UserError(f"conditioning={cfg.model.conditioning._target_.rsplit('.', 1)[-1]} "
                        f"needs class labels, but this data set has {classes} classes. Use a "
                        "labelled data set (mnist, fashion_mnist, cifar10, an image_folder with "
                        "one folder per class), or drop the conditioning option.")
    for side in ("generator", "discriminator"):
        if not takes(cfg.model[side]._target_, "num_classes"):
            raise UserError(f"The {side} {cfg.model[side]._target_} cannot be "
                            "class-conditional. Use a model that can (model=dcgan or "
                            "model=sngan), or drop the conditioning option.")
    return ({"num_classes": classes},
            {"num_classes": classes, "conditioning": instantiate(cfg.model.conditioning)})


def takes(target: str, *parameters: str) -> bool:
    """Whether the callable ``target`` takes every one of ``parameters``."""
    names = inspect.signature(get_object(target)).parameters
    return all(name in names for name in parameters)


def check_model(cfg: DictConfig, task: str, fits: Callable[[DictConfig], bool],
                what: str) -> None:
    """A UserError naming the model options that fit ``task`` when ``cfg.model`` does not
    (``fits``: the model node -> bool; ``what``: what the task needs, in words)."""
    if fits(cfg.model):
        return
    from ganrun.config import config_dir

    fitting = []
    for path in sorted((config_dir() / "model").glob("*.yaml")):
        node = OmegaConf.load(path)
        try:
            if fits(node):
                fitting.append(path.stem)
        except Exception:  # an option that cannot even be inspected does not fit
            continue
    raise UserError(f"task={task} needs {what}, but the model's generator "
                    f"({cfg.model.generator._target_}) and discriminator "
                    f"({cfg.model.discriminator._target_}) are not that. Models that fit "
                    f"task={task}: {', '.join(f'model={m}' for m in fitting) or 'none shipped'} "
                    "(or an option of your --config-dir with such networks).")


def refuse(cfg: DictConfig, task: str, options: dict[str, str]) -> None:
    """A UserError for the first option in use that ``task`` does not support. ``options``:
    a config key (dotted) -> why the task cannot use it and what to do instead."""
    for key, reason in options.items():
        value = OmegaConf.select(cfg, key, default=None)
        off = value in (None, {}, [], 0, False) or (key.endswith("n_critic") and value == 1)
        if not off:
            raise UserError(f"task={task} does not support `{key}`, which this run sets: "
                            f"{reason}")
