"""Building the GAN module from a composed config, for training and for loading checkpoints."""

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganrun.module import GAN


def data_shape(datamodule) -> dict:
    """What the networks need to know about the data, saved in every checkpoint."""
    return {"channels": datamodule.channels, "image_size": datamodule.image_size,
            "num_classes": datamodule.num_classes}


def regularizers(cfg: DictConfig) -> dict:
    # .get: checkpoints of older versions have no such key
    return {name: instantiate(node) for name, node in (cfg.get("regularizers") or {}).items()
            if node is not None}


def build_module(cfg: DictConfig, shape: dict, choices: dict | None = None) -> GAN:
    size = {"channels": shape["channels"], "image_size": shape["image_size"]}
    generator = instantiate(cfg.model.generator, latent_dim=cfg.model.latent_dim, **size)
    return GAN(
        generator=generator,
        ema=instantiate(cfg.ema)(generator) if cfg.get("ema") else None,
        discriminator=instantiate(cfg.model.discriminator, **size),
        loss=instantiate(cfg.loss),
        divergence=instantiate(cfg.divergence),
        regularizers=regularizers(cfg),
        g_optimizer=instantiate(cfg.optimizer.generator),
        d_optimizer=instantiate(cfg.optimizer.discriminator),
        latent_dim=cfg.model.latent_dim,
        n_critic=cfg.trainer.n_critic,
        max_iterations=cfg.trainer.max_steps,
        config=OmegaConf.to_container(cfg, resolve=True),
        choices=choices,
        data_shape=shape,
    )
