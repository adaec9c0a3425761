"""Every option of every group composes and passes the schema; bad keys and values fail early."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict

from ganrun.config import config_dir, validate
from ganrun.errors import UserError

GROUPS = ["model", "loss", "dataset", "optimizer", "hardware", "trainer", "divergence", "logger", "callbacks",
          "hparams_search",
          "regularizer", "ema", "conditioning", "augment",
          "paths", "experiment", "debug"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def composed(*overrides: str, tmp_path: Path):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path)  # set by a real run, not by compose
            HydraConfig.instance().set_config(cfg)
            del cfg["hydra"]
        return validate(cfg)


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), group
    assert {"dcgan", "mlp"} <= set(options("model"))
    assert {"bce", "minimax", "lsgan", "hinge"} <= set(options("loss"))
    assert {"wasserstein", "wgan_gp", "ragan"} <= set(options("loss"))
    assert {"mnist", "fashion_mnist", "cifar10", "celeba", "image_folder"} <= set(options("dataset"))
    assert {"adam", "rmsprop"} <= set(options("optimizer"))
    assert {"auto", "cpu", "gpu", "ddp", "bf16", "fp16"} <= set(options("hardware"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_validates(group, option, tmp_path):
    extra = ["dataset.root=/x"] if (group, option) == ("dataset", "image_folder") else []
    cfg = composed(f"{group}={option}", *extra, tmp_path=tmp_path)
    # The objects a run builds from its config can be built.
    instantiate(cfg.loss)
    instantiate(cfg.optimizer.generator)
    assert str(cfg.paths.output_dir) == str(tmp_path)


def test_precision_composes_with_a_device(tmp_path):
    cfg = composed("hardware=[cpu,bf16]", tmp_path=tmp_path)
    assert (cfg.hardware.accelerator, cfg.hardware.precision) == ("cpu", "bf16-mixed")


def test_lr_sets_both_optimizers_and_ttur_sets_them_apart(tmp_path):
    cfg = composed("optimizer.lr=1e-3", tmp_path=tmp_path)
    assert cfg.optimizer.generator.lr == cfg.optimizer.discriminator.lr == 1e-3
    cfg = composed("optimizer.generator.lr=1e-4", "optimizer.discriminator.lr=4e-4",
                   tmp_path=tmp_path)
    assert (cfg.optimizer.generator.lr, cfg.optimizer.discriminator.lr) == (1e-4, 4e-4)


@pytest.mark.parametrize("override, message", [
    ("+model.generator.widht=4", r"Unknown key `model.generator.widht`.*Did you mean `width`"),
    ("+trainer.max_step=4", r"`trainer.max_step`.*Did you mean `max_steps`"),
    ("+dataset.batchsize=4", r"`dataset.batchsize`.*Did you mean `batch_size`"),
    ("trainer.max_steps=many", r"`trainer.max_steps`"),
    ("model.discriminator.norm=3", r"`model.discriminator.norm` must be str"),
    ("optimizer.lr=-1", r"learning rate must be positive"),
    ("optimizer.discriminator.lr=0", r"discriminator learning rate must be positive"),
    ("trainer.n_critic=0", r"trainer.n_critic must be at least 1"),
    ("trainer.d_warmup_steps=-1", r"trainer.d_warmup_steps must be 0 or more"),
    ("trainer.max_steps=null", r"Neither trainer.max_steps nor trainer.max_epochs"),
    ("loss._target_=ganrun.training.losses.Nope", r"cannot be imported"),
])
def test_bad_config_fails_with_a_clear_message(override, message, tmp_path):
    with pytest.raises(UserError, match=message):
        composed(override, tmp_path=tmp_path)
