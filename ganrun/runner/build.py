"""Building the GAN module from a composed config, for training and for loading checkpoints."""

import inspect

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from ganrun.errors import UserError
from ganrun.runner.module import Runner


def data_shape(datamodule) -> dict:
    """What the networks need to know about the data, saved in every checkpoint."""
    names = getattr(datamodule, "class_names", None)
    shape = {"image_size": datamodule.image_size, "num_classes": datamodule.num_classes,
             "class_names": list(names) if names else None}
    if hasattr(datamodule, "channels_a"):  # two unpaired domains; "channels": the output side
        return {**shape, "channels_a": datamodule.channels_a,
                "channels_b": datamodule.channels_b, "channels": datamodule.channels_b}
    return {**shape, "channels": datamodule.channels}


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
        target = cfg.model[side]._target_
        if "num_classes" not in inspect.signature(get_object(target)).parameters:
            raise UserError(f"The {side} {target} cannot be class-conditional. Use a model "
                            "that can (model=dcgan or model=sngan), or drop the conditioning "
                            "option.")
    return ({"num_classes": classes},
            {"num_classes": classes, "conditioning": instantiate(cfg.model.conditioning)})


def build_task(cfg: DictConfig, shape: dict):
    """The task of ``cfg.task``: its ``_target_`` is a builder ``(cfg, shape, **options)``
    called directly rather than through instantiate, which would instantiate every node of
    the whole config passed to it."""
    options = {k: v for k, v in cfg.task.items() if k != "_target_"}
    return get_object(cfg.task._target_)(cfg, shape, **options)


def build_module(cfg: DictConfig, shape: dict, choices: dict | None = None) -> Runner:
    return Runner(
        task=build_task(cfg, shape),
        optimizers={"G": instantiate(cfg.optimizer.generator),
                    "D": instantiate(cfg.optimizer.discriminator)},
        schedule=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        divergence=instantiate(cfg.divergence),
        max_iterations=cfg.trainer.max_steps,
        config=OmegaConf.to_container(cfg, resolve=True),
        choices=choices,
        data_shape=shape,
    )
