"""Trained models from checkpoints and export folders, for inference.

Reading a checkpoint builds the task it was trained with (its networks, from the stored config,
checked like a command-line one) and loads the weights; the training module (optimizers,
schedule, divergence policy) is never built. What comes back is the task's inference object
(``ganrun.inference.model``): a sampler or a translator, whatever the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.inference.exports import is_export, read_export
from ganrun.inference.model import Inference, Sampler


@dataclass
class Loaded:
    """A trained model and what its file says about how it was made."""

    model: Inference
    dataset: dict | None = None      # the training data set's config: what metrics compare with
    iteration: int | None = None
    seed: int | None = None
    choices: dict = field(default_factory=dict)
    export: bool = False


def load(path: str | Path, device: str | torch.device = "cpu", trust=()) -> Loaded:
    """The inference object of a checkpoint or an export folder, in eval mode on ``device``."""
    if is_export(path):
        model, config = read_export(Path(path), trust)
        return Loaded(model.to(device).eval(), config.get("dataset"), config.get("iteration"),
                      config.get("seed"), dict(config.get("choices") or {}), export=True)
    return from_checkpoint(path, device, trust)


def load_model(path: str | Path, device: str | torch.device = "cpu", trust=()) -> Inference:
    return load(path, device, trust).model


def from_checkpoint(path: str | Path, device: str | torch.device = "cpu", trust=()) -> Loaded:
    from omegaconf import OmegaConf

    from ganrun.runner.checkpoints import read_checkpoint, run_state, stored_config
    from ganrun.tasks import build_task

    checkpoint = read_checkpoint(path)  # a format-1 checkpoint is migrated here
    state = run_state(checkpoint, path)
    cfg = stored_config(state.config, path, trust)
    task = build_task(cfg, state.data_shape)
    load_task_weights(task, checkpoint.get("state_dict", {}), path)
    model = task.inference().to(device).eval()
    return Loaded(model, OmegaConf.to_container(cfg.dataset, resolve=True), state.iteration,
                  state.config.get("seed"), dict(state.choices))


def load_task_weights(task: nn.Module, weights: dict, path) -> None:
    """The checkpoint's ``task.*`` weights into ``task``; a UserError when they do not fit."""
    weights = {key.removeprefix("task."): value for key, value in weights.items()
               if key.startswith("task.")}
    check_weights(weights, task.state_dict(), f"Checkpoint '{path}'")
    try:
        missing, unexpected = task.load_state_dict(weights, strict=False)
    except RuntimeError as err:  # tensors of other shapes
        missing, unexpected = [" ".join(str(err).split())[:300]], []
    if missing or unexpected:
        raise UserError(f"Checkpoint '{path}' does not fit the model its config describes "
                        f"(missing or mismatched: {', '.join(missing) or 'none'}; unexpected: "
                        f"{', '.join(unexpected) or 'none'}). It was written by an incompatible "
                        "version of the model code, or its config was edited.")


def check_weights(weights: dict, expected: dict, source: str) -> None:
    """Weights from a file are numbers of the kind the network holds: a floating-point tensor
    where it has one (an int64 one would be cast silently), and finite (NaN or inf weights make
    images of NaN)."""
    for key, value in weights.items():
        want = expected.get(key)
        if not isinstance(value, torch.Tensor) or want is None:
            continue  # other checks name what does not fit
        if want.is_floating_point() and not value.is_floating_point():
            raise UserError(f"{source}: the weights `{key}` are {value.dtype}, not floating "
                            "point, where the network holds floats: the file was edited or "
                            "damaged. Export or save the model again.")
        if value.is_floating_point() and value.numel() and not torch.isfinite(value).all():
            raise UserError(f"{source}: the weights `{key}` are not finite (NaN or inf): the "
                            "model diverged before it was saved, or the file was edited. Use a "
                            "checkpoint from before the divergence.")


def refuse_kind(path, model: Inference, wanted: str, command: str) -> UserError:
    return UserError(f"'{path}' is {model.kind}, not {wanted}. Use `{command}`.")


def load_sampler(path, device="cpu", trust=()) -> tuple[Sampler, Loaded]:
    loaded = load(path, device, trust)
    if loaded.model.sampler is None:
        raise refuse_kind(path, loaded.model, "a generator of images",
                          f"ganrun translate ckpt={path} in=<folder> out=<folder>")
    return loaded.model.sampler, loaded


def load_generator(path: str | Path, device: str | torch.device = "cpu",
                   trust=()) -> Sampler:
    """A trained generator (its EMA copy when it has one), from an export folder or a
    checkpoint: an ``nn.Module`` in eval mode. ``G.ganrun`` holds ``latent_dim``,
    ``num_classes``, ``class_names`` and ``data_shape``; ``ganrun.generate_images(G, num,
    seed)`` draws images from it, as ``ganrun sample`` does.

    Example::

        from ganrun import generate_images, load_generator
        G = load_generator("exports/dcgan")
        images = generate_images(G, 16, seed=0)   # (16, C, H, W) in [-1, 1]
    """
    sampler, _ = load_sampler(path, device, trust)
    sampler.ganrun = {"latent_dim": sampler.latent_dim, "num_classes": sampler.num_classes,
                      "class_names": sampler.class_names, "data_shape": sampler.data_shape}
    return sampler.eval()


def generate_images(generator: Sampler, num: int, seed: int = 0,
                    labels: torch.Tensor | int | None = None,
                    truncation: float | None = None, **options) -> torch.Tensor:
    """``num`` images in [-1, 1] (CPU) from a generator of ``load_generator``, with the
    latents ``ganrun sample`` draws for ``seed``: the same images as ``ganrun sample``.

    ``labels``: a class index or a tensor of ``num`` indices for a conditional generator; by
    default a balanced mix of classes. ``truncation``: the truncation trick of BigGAN (Brock
    et al. 2019) for latent-vector generators: latents from the standard normal truncated to
    [-truncation, truncation], trading variety for fidelity; for a style-based generator
    (StyleGAN2) the truncation trick of StyleGAN, psi: each w pulled towards the tracked mean
    ``w_avg`` (1: none), with the constant noise inputs, as ``ganrun sample`` makes them.
    ``options``: the model's other sampling keys (``ganrun sample ckpt=... --help`` lists
    them)."""
    if not isinstance(generator, Sampler):
        raise UserError("generate_images takes a generator of ganrun.load_generator(), got "
                        f"a {type(generator).__name__}.")
    label = labels if isinstance(labels, int) else None
    given = {"truncation": truncation, "label": label, **options}
    opts = generator.options(**{k: v for k, v in given.items() if v is not None})
    generator.check(opts)
    z = generator.latents(num, seed, opts)
    if isinstance(labels, torch.Tensor):
        if not generator.num_classes:
            raise UserError("labels were given, but this generator is unconditional (it takes "
                            "no class labels). Drop labels=.")
        conditions = labels
    else:
        conditions = generator.conditions(num, opts)
    return generator.batched(z, conditions, opts)
