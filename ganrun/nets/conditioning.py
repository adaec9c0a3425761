"""Class conditioning: the generator's label input and the discriminator's output heads.

A conditional model is chosen with the ``conditioning`` group (``conditioning=projection``),
which sets ``model.conditioning`` to a partial head class below. The number of classes comes
from the data set at build time. Every conditional generator takes the label as a learned
embedding joined to the latent vector; the discriminator's head decides how D uses it. A head
maps D's flattened features ``h`` (N, F) and the labels to the real/fake logits (N,), or for
ACGAN to ``(logits, class_logits)``; ``split_output`` reads either.
"""

import torch
from torch import nn


class LabelEmbedding(nn.Module):
    """The generator side: [z, embed(y)], so G's first layer takes latent_dim + embed_dim."""

    def __init__(self, num_classes: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([z.flatten(1), self.embed(labels)], dim=1)


class Unconditional(nn.Module):
    def __init__(self, features: int, num_classes: int = 0):
        super().__init__()
        self.out = nn.Linear(features, 1)

    def forward(self, h, labels=None):
        return self.out(h).flatten()


class Embedding(nn.Module):
    """cGAN (Mirza & Osindero 2014): the label's embedding is joined to D's features."""

    def __init__(self, features: int, num_classes: int, embed_dim: int = 50):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.out = nn.Linear(features + embed_dim, 1)

    def forward(self, h, labels):
        return self.out(torch.cat([h, self.embed(labels)], dim=1)).flatten()


class Projection(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): psi(h) + <embed(y), h>."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.out = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h, labels):
        return self.out(h).flatten() + (self.embed(labels) * h).sum(dim=1)


class AuxiliaryClassifier(nn.Module):
    """ACGAN (Odena et al. 2017): D also classifies every image; the cross-entropy on the
    data labels is added to D's loss (reals and fakes) and to G's loss (fakes)."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.out = nn.Linear(features, 1)
        self.classes = nn.Linear(features, num_classes)

    def forward(self, h, labels=None):
        return self.out(h).flatten(), self.classes(h)


def split_output(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(real/fake logits, class logits or None) from a discriminator's output."""
    return out if isinstance(out, tuple) else (out, None)
