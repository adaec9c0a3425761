"""Trained generators from checkpoints and export folders, for sampling, metrics and the API.

An export folder (``ganrun export``) holds ``model.safetensors`` (the generator's weights:
tensors only, no code) and ``config.json`` (the network config, data shape, classes, metrics),
the layout of Hugging Face's ``save_pretrained``. Both are read as data: the JSON's ``_target_``
must be one of ganrun's own networks or trusted by the user (``ganrun.trust``).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.generate import run_generator

WEIGHTS, CONFIG = "model.safetensors", "config.json"
EXPORT_FORMAT = 1


@dataclass
class LoadedGenerator:
    """What ``ganrun sample`` and ``ganrun eval`` need of a trained model."""

    generator: nn.Module
    latent_dim: int
    data_shape: dict
    dataset: dict | None  # the training data set's config: the real images metrics compare with

    @property
    def num_classes(self) -> int:
        return int(getattr(self.generator, "num_classes", 0) or 0)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                 **options) -> torch.Tensor:
        return run_generator(self.generator, z, labels, self.num_classes, **options)

    def metric_generator(self):
        return lambda n: self.generate(self.sample_z(n))


class Translator(nn.Module):
    """The two generators of a translator (task=cyclegan), from a checkpoint or an export."""

    def __init__(self, nets: dict[str, nn.Module], data_shape: dict):
        super().__init__()
        self.nets, self.data_shape = nn.ModuleDict(nets), data_shape

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def translate(self, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        from ganrun.tasks.cyclegan import translate_with

        return translate_with(self.nets["G_AB" if direction == "AtoB" else "G_BA"], images)


TRANSLATOR_NETS = ("G_AB", "G_BA")


class PairedTranslator(nn.Module):
    """The generator of a paired translator (task=pix2pix: pix2pix, super-resolution,
    inpainting) with what ``ganrun translate`` needs to know about its inputs."""

    paired = True

    def __init__(self, task, data_shape: dict):
        super().__init__()
        self.task, self.data_shape = task, data_shape
        self.scale, self.has_mask, self.degrade = task.scale, task.has_mask, task.degrade
        # The image channels of an input (an inpainting input's mask channel is added here).
        self.image_channels = task.fixed_a.shape[1] - int(task.has_mask)
        self.size_multiple = getattr(task.nets["G"], "size_multiple", 4)

    @property
    def device(self) -> torch.device:
        return self.task.fixed_a.device

    def translate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        return self.task.translate(inputs)


def load_translator(path: str | Path, device, trust=()) -> Translator:
    """The translator of a task=cyclegan checkpoint or of its export folder, on ``device``; a
    ``UserError`` for a generator of images from latents."""
    if is_export(path):
        config = read_export_config(Path(path))
        if config.get("task") != "cyclegan":
            raise not_a_translator(path, "an image generator")
        nets = {name: build_exported(config, Path(path), trust, name) for name in TRANSLATOR_NETS}
        translator = Translator(nets, config["data_shape"])
        load_weights(translator.nets, Path(path))
        return translator.to(device).eval()
    from ganrun.runner.checkpoints import load_gan

    module, _ = load_gan(path, device, trust)
    if not hasattr(module.task, "translate"):
        raise not_a_translator(path, f"a {type(module.task).__name__} checkpoint")
    if hasattr(module.task, "test_pairs"):
        return PairedTranslator(module.task, module.data_shape)
    return Translator({n: module.task.nets[n] for n in TRANSLATOR_NETS}, module.data_shape)


def not_a_translator(path, what: str) -> UserError:
    return UserError(f"'{path}' is {what}, which generates images from latents rather than "
                     f"translating them. Use `ganrun sample ckpt={path}`.")


def is_export(path: str | Path) -> bool:
    return Path(path).is_dir()


def load_trained(path: str | Path, device: str | torch.device = "cpu",
                 trust=()) -> LoadedGenerator:
    """The sampling generator of a checkpoint (its EMA copy when it has one) or of an export
    folder, in eval mode on ``device``."""
    if is_export(path):
        generator, config = read_export(Path(path), trust)
        return LoadedGenerator(generator.to(device), config["latent_dim"], config["data_shape"],
                               config.get("dataset"))
    from ganrun.runner.checkpoints import load_gan

    module, cfg = load_gan(path, device, trust)
    return sampler_of(module, cfg, path)


def sampler_of(module, cfg, path) -> LoadedGenerator:
    """The sampling side of a checkpoint's runner module (built by ``load_gan``)."""
    from omegaconf import OmegaConf

    if not hasattr(module.task, "sampling_generator"):
        raise UserError(f"'{path}' is a {type(module.task).__name__} checkpoint, which translates "
                        "images rather than generating them from latents. Use `ganrun translate "
                        f"ckpt={path} in=<folder> out=<folder>`.")
    return LoadedGenerator(module.task.sampling_generator, module.task.latent_dim,
                           module.data_shape,
                           OmegaConf.to_container(cfg.dataset, resolve=True))


def load_generator(path: str | Path, device: str | torch.device = "cpu",
                   trust=()) -> nn.Module:
    """A trained generator as a plain ``nn.Module`` in eval mode, from an export folder or a
    checkpoint. ``G.ganrun`` holds ``latent_dim``, ``num_classes``, ``class_names`` and
    ``data_shape``; ``ganrun.generate_images(G, num, seed)`` draws images from it.

    Example::

        from ganrun import generate_images, load_generator
        G = load_generator("exports/dcgan")
        images = generate_images(G, 16, seed=0)   # (16, C, H, W) in [-1, 1]
    """
    loaded = load_trained(path, device, trust)
    generator = loaded.generator.eval()
    shape = loaded.data_shape
    generator.ganrun = {"latent_dim": loaded.latent_dim, "num_classes": loaded.num_classes,
                        "class_names": shape.get("class_names"), "data_shape": shape}
    return generator


def read_export(folder: Path, trust=()) -> tuple[nn.Module, dict]:
    """The generator of an export folder with its weights loaded, and its config.json."""
    config = read_export_config(folder)
    if config.get("task") == "cyclegan":
        raise UserError(f"'{folder}' is an exported translator (task=cyclegan), which translates "
                        "images rather than generating them from latents. Use `ganrun translate "
                        f"ckpt={folder} in=<folder> out=<folder>`.")
    generator = build_exported(config, folder, trust)
    load_weights(generator, folder)
    return generator.eval(), config


def load_weights(module: nn.Module, folder: Path) -> None:
    try:
        module.load_state_dict(read_weights(folder / WEIGHTS), strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:400]
        raise UserError(f"Export '{folder}': {WEIGHTS} does not match the network that "
                        f"{CONFIG} describes ({detail}). The two files come from different "
                        "models: export the checkpoint again with `ganrun export`.") from None


def read_export_config(folder: Path) -> dict:
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise UserError(f"'{folder}' is not a ganrun export: it needs {CONFIG} and {WEIGHTS}. "
                        "Give an export folder written by `ganrun export`, or a .ckpt file.")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"Export '{folder}': {CONFIG} is not valid JSON ({err}). Export the "
                        "checkpoint again with `ganrun export`.") from None
    version = config.get("ganrun_export") if isinstance(config, dict) else None
    if not isinstance(version, int):
        raise UserError(f"Export '{folder}': {CONFIG} is not a ganrun export config (no "
                        "`ganrun_export` version). Export the checkpoint with `ganrun export`.")
    if version > EXPORT_FORMAT:
        raise UserError(f"Export '{folder}' was written by a newer ganrun (export format "
                        f"{version}; this ganrun reads {EXPORT_FORMAT}). Upgrade ganrun.")
    needed = (("generator", dict), ("generator_kwargs", dict), ("data_shape", dict))
    if config.get("task") != "cyclegan":
        needed += (("latent_dim", int),)
    for key, kind in needed:
        if not isinstance(config.get(key), kind):
            raise UserError(f"Export '{folder}': {CONFIG} has no valid `{key}`. Export the "
                            "checkpoint again with `ganrun export`.")
    return config


def build_exported(config: dict, folder: Path, trust=(), name: str | None = None) -> nn.Module:
    """The network of config.json's ``generator`` node, with ``generator_kwargs`` (or, for a
    translator's generator ``name``, ``generator_kwargs[name]``)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ganrun.config import check_target_nodes
    from ganrun.trust import check_data

    source = f"Export '{folder}'"
    check_data(config, source, trust)  # the whole file: generator_kwargs can name targets too
    try:
        check_target_nodes(config["generator"], "generator")
        if config.get("dataset") is not None:
            check_target_nodes(config["dataset"], "dataset")
        kwargs = config["generator_kwargs"] if name is None else config["generator_kwargs"][name]
        return instantiate(OmegaConf.create(config["generator"]), **kwargs)
    except UserError as err:
        raise UserError(f"{source}: {CONFIG} is not valid: {err}") from None
    except Exception as err:  # a network that cannot be built from these arguments
        raise UserError(f"{source}: the generator in {CONFIG} cannot be built "
                        f"({type(err).__name__}: {err}). Export the checkpoint again.") from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"'{path}' cannot be read ({type(err).__name__}: {err}); it is "
                        "truncated or not a safetensors file. Export the checkpoint again "
                        "with `ganrun export`.") from None
