"""Reproducible latent vectors and labels for sampling, and paths between latents."""

import torch

# Latents are drawn from the seeded stream in blocks of this fixed size. torch's CPU normal
# sampler fills tensors in vectorized groups, so randn(n) is not a prefix of randn(n + k);
# fixed blocks make latent i depend on the seed only, never on num or batch_size.
BLOCK = 1024


def seeded_latents(num: int, dim: int, seed: int) -> torch.Tensor:
    """``num`` standard normal latents (CPU); the first n are the same for every num >= n."""
    generator = torch.Generator().manual_seed(seed)
    blocks = -(-num // BLOCK)
    return torch.cat([torch.randn(BLOCK, dim, generator=generator) for _ in range(blocks)])[:num]


def balanced_labels(num: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., K-1, 0, 1, ...: every class equally often (up to one), in a fixed order."""
    return torch.arange(num) % num_classes


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): intermediate
    points keep the norm a Gaussian latent typically has, where lerp passes near the origin."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1).unsqueeze(-1)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    # Nearly parallel latents: the spherical formula divides by ~0 and lerp is the same path.
    straight = sin.abs() < 1e-6
    safe_sin = torch.where(straight, torch.ones_like(sin), sin)
    curved = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe_sin
    return torch.where(straight, lerp(a, b, t), curved)


def interpolation_latents(rows: int, steps: int, dim: int, seed: int,
                          spherical: bool = True) -> torch.Tensor:
    """``rows * steps`` latents, row-major: each row walks from one random latent to another."""
    ends = seeded_latents(2 * rows, dim, seed).view(rows, 2, 1, dim)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    path = slerp if spherical else lerp
    return path(ends[:, 0], ends[:, 1], t).reshape(rows * steps, dim)
