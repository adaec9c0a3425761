"""Toy 2-D mixtures of Gaussians, the standard mode-collapse benchmark.

- ``Ring``: 8 Gaussians evenly spaced on a circle of radius 2, std 0.02 (Metz et al. 2017,
  "Unrolled GANs").
- ``Grid``: 25 Gaussians centred on {-4, -2, 0, 2, 4}^2, std 0.05 (Srivastava et al. 2017,
  "VEEGAN"; also PacGAN).

Points are served as 2-channel 1x1 "images", batches (B, 2, 1, 1), so every network written
for images (``model=mlp``) trains on them unchanged. The generators end in tanh, which cannot
reach the benchmark's raw coordinates (±2, ±4), so the whole mixture, centres and std alike,
is multiplied by ``scale`` (0.4 for the ring, 0.2 for the grid: the outer centres land at
±0.8, leaving the 3-std neighbourhoods inside (-1, 1)). Mode metrics count in units of std,
so they are the same as on the raw coordinates.

A split is a fixed tensor of ``num_points`` points drawn from a seeded generator (the test
split from another seed), so a run's data depends on ``seed`` only, and the batch order on
the run's seed, like every other data set.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from ganrun.data.base import GANDataModule
from ganrun.errors import UserError


class Points(Dataset):
    """Points (N, 2) served as (N, 2, 1, 1) batches, with the index of their mode as label."""

    def __init__(self, points: torch.Tensor, modes: torch.Tensor):
        self.points, self.modes = points, modes

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int):
        points, modes = self.__getitems__([index])
        return points[0], modes[0]

    def __getitems__(self, indices: list[int]):
        return self.points[indices].view(-1, 2, 1, 1), self.modes[indices]


class GaussianMixture2D(GANDataModule):
    """Equal-weight isotropic Gaussians around ``centers()`` (raw units) times ``scale``.

    ``centers`` (K, 2) and ``std`` are exposed in data units (after scaling), for the mode
    metrics (``ganrun.metrics.modes``).
    """

    channels = 2
    num_classes = 0  # labels are the mode index, but the nets are not conditioned on them

    def __init__(self, raw_std: float, scale: float, num_points: int, seed: int,
                 batch_size: int, num_workers: int, split: str, drop_last: bool, root: str):
        # image_size 1: each point is a 2-channel 1x1 image; root and download are unused.
        super().__init__(root, False, 1, batch_size, num_workers, split, drop_last)
        if not num_points >= 1 or not scale > 0 or not raw_std > 0:
            raise UserError(f"dataset.num_points must be >= 1 and dataset.scale and dataset.std "
                            f"> 0; got num_points={num_points}, scale={scale}, std={raw_std}.")
        self.num_points, self.seed, self.scale = num_points, seed, scale
        self.centers = self.raw_centers() * scale
        self.std = raw_std * scale
        reach = self.centers.abs().max().item() + 3 * self.std
        if reach >= 1:
            raise UserError(
                f"With dataset.scale={scale}, the data reach ±{reach:.3g} (outer centre plus 3 "
                "std), beyond the generator's tanh range (-1, 1), so the outer modes cannot be "
                f"generated. Lower dataset.scale, e.g. to {0.8 * scale / (reach - 3 * self.std):.3g}.")

    def raw_centers(self) -> torch.Tensor:
        raise NotImplementedError

    def draw(self, num: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``num`` points (num, 2) and their mode indices, equal mode weights."""
        modes = torch.randint(len(self.centers), (num,), generator=generator)
        noise = torch.randn(num, 2, generator=generator) * self.std
        return self.centers[modes] + noise, modes

    def load_split(self) -> Points:
        # A different stream per split, so that "test" points are not the "train" points.
        generator = torch.Generator().manual_seed(self.seed * 2 + (self.split == "test"))
        return Points(*self.draw(self.num_points, generator))

    def real_points(self, num: int) -> torch.Tensor:
        """The first ``num`` points of this split (num, 2), for plots and metrics."""
        self.setup()
        return self.dataset.points[:num]


class Ring(GaussianMixture2D):
    """``num_modes`` Gaussians evenly spaced on a circle (Metz et al. 2017)."""

    def __init__(self, num_modes: int = 8, radius: float = 2.0, std: float = 0.02,
                 scale: float = 0.4, num_points: int = 100_000, seed: int = 0,
                 batch_size: int = 256, num_workers: int = 0, split: str = "train",
                 drop_last: bool = True, root: str = "."):
        if not num_modes >= 1 or not radius > 0:
            raise UserError(f"dataset.num_modes must be >= 1 and dataset.radius > 0; got "
                            f"num_modes={num_modes}, radius={radius}.")
        self.num_modes, self.radius = num_modes, radius
        super().__init__(std, scale, num_points, seed, batch_size, num_workers, split,
                         drop_last, root)

    def raw_centers(self) -> torch.Tensor:
        angles = torch.arange(self.num_modes) * (2 * math.pi / self.num_modes)
        return torch.stack([angles.cos(), angles.sin()], dim=1) * self.radius


class Grid(GaussianMixture2D):
    """``side`` x ``side`` Gaussians on a square lattice centred at 0 (Srivastava et al. 2017)."""

    def __init__(self, side: int = 5, spacing: float = 2.0, std: float = 0.05,
                 scale: float = 0.2, num_points: int = 100_000, seed: int = 0,
                 batch_size: int = 256, num_workers: int = 0, split: str = "train",
                 drop_last: bool = True, root: str = "."):
        if not side >= 1 or not spacing > 0:
            raise UserError(f"dataset.side must be >= 1 and dataset.spacing > 0; got "
                            f"side={side}, spacing={spacing}.")
        self.side, self.spacing = side, spacing
        super().__init__(std, scale, num_points, seed, batch_size, num_workers, split,
                         drop_last, root)

    def raw_centers(self) -> torch.Tensor:
        ticks = (torch.arange(self.side) - (self.side - 1) / 2) * self.spacing
        return torch.cartesian_prod(ticks, ticks)
