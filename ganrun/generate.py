"""Running a generator for samples and metrics: eval mode, balanced labels, fp32 output.

Shared by the training module (sample grids, metrics), checkpoints and exported generators, so
that the same weights and latents give the same images whichever of them holds the network.
"""

import torch
from torch import nn

from ganrun.latents import balanced_labels, seeded_latents


@torch.no_grad()
def run_generator(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
                  num_classes: int = 0, **options) -> torch.Tensor:
    """Images in [-1, 1] from latents, in eval mode so that a sample never depends on its
    batch. A conditional generator without labels makes a balanced mix of classes.
    ``options`` go to the generator (StyleGAN2's truncation_psi, truncation_cutoff,
    noise_mode)."""
    device = next(generator.parameters()).device
    if labels is None and num_classes:
        labels = balanced_labels(len(z), num_classes)
    labels = None if labels is None else labels.to(device)
    was_training = generator.training
    generator.eval()
    try:
        return generator(z.to(device), labels, **options).float()
    finally:
        generator.train(was_training)


def generate_images(generator: nn.Module, num: int, seed: int = 0,
                    labels: torch.Tensor | int | None = None,
                    truncation: float | None = None) -> torch.Tensor:
    """``num`` images in [-1, 1] (CPU) from a generator of ``ganrun.load_generator``, with the
    latents ``ganrun sample`` draws for ``seed``: the same images as ``ganrun sample``.

    ``labels``: a class index or a tensor of ``num`` indices for a conditional generator; by
    default a balanced mix of classes. ``truncation``: the truncation trick of BigGAN (Brock
    et al. 2019) for latent-vector generators: latents from the standard normal truncated to
    [-truncation, truncation], trading variety for fidelity; for a style-based generator
    (StyleGAN2) the truncation trick of StyleGAN, psi: each w pulled towards the tracked mean
    ``w_avg`` (1: none), with the constant noise inputs, as ``ganrun sample`` makes them."""
    from ganrun.style_sampling import is_style_based

    info = generator.ganrun
    style_based = is_style_based(generator)
    options = {"noise_mode": "const"} if style_based else {}
    if style_based and truncation is not None:
        options["truncation_psi"] = truncation
    z = seeded_latents(num, info["latent_dim"], seed) if truncation is None or style_based \
        else truncated_latents(num, info["latent_dim"], seed, truncation)
    if isinstance(labels, int):
        labels = torch.full((num,), labels, dtype=torch.long)
    return run_generator(generator, z, labels, info["num_classes"], **options).cpu()


def truncated_latents(num: int, dim: int, seed: int, threshold: float) -> torch.Tensor:
    """Standard normal latents truncated to [-threshold, threshold], drawn from ``seed``."""
    if not threshold > 0:
        raise ValueError(f"truncation must be positive, got {threshold}")
    z = torch.empty(num, dim)
    return torch.nn.init.trunc_normal_(z, a=-threshold, b=threshold,
                                       generator=torch.Generator().manual_seed(seed))
