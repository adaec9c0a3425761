"""Improved precision and recall (Kynkäänniemi et al. 2019) on Inception features.

Each set's manifold is the union of balls around its samples, the radius of each being the
distance to its k-th nearest neighbour in the same set. Precision is the share of generated
samples inside the real manifold (quality); recall the share of real samples inside the
generated one (coverage).
"""

import torch

from ganrun.metrics.scores import FeatureScore

CHUNK = 1024  # rows of the distance matrix held at once


def kth_neighbour_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each sample to its k-th nearest other sample (itself is at distance 0)."""
    radii = [torch.cdist(rows, features).kthvalue(k + 1, dim=1).values
             for rows in features.split(CHUNK)]
    return torch.cat(radii)


def coverage(manifold: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor) -> float:
    """Share of ``queries`` within the radius of at least one sample of ``manifold``."""
    inside = [(torch.cdist(rows, manifold) <= radii).any(dim=1) for rows in queries.split(CHUNK)]
    return torch.cat(inside).double().mean().item()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    real, fake = real.double(), fake.double()
    precision = coverage(real, kth_neighbour_radii(real, k), fake)
    recall = coverage(fake, kth_neighbour_radii(fake, k), real)
    return precision, recall


class PrecisionRecall(FeatureScore):
    keys = ("precision", "recall")

    def __init__(self, k: int = 3):
        self.k = k

    def min_samples(self) -> int:
        return self.k + 1

    def __call__(self, real, fake):
        precision, recall = precision_recall(real, fake.pool, self.k)
        return {"precision": precision, "recall": recall}
