"""DCGAN (Radford et al. 2015), with depth adapted to the data set's resolution.

Images of size ``base * 2**n`` with ``base`` 4 or 7 are supported (28, 32, 64, 128, ...): the
generator projects the latent vector to a ``base x base`` map and doubles it ``n`` times; the
discriminator mirrors it.
"""

from typing import Callable

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.conditioning import LabelEmbedding
from ganrun.nets.layers import add_spectral_norm, dcgan_init, norm_layer


def dcgan_layout(image_size: int) -> tuple[int, int]:
    """(base, number of 2x up-samplings) for an image size, e.g. 28 -> (7, 2), 64 -> (4, 4)."""
    for base in (4, 7):
        size, doublings = image_size, 0
        while size > base and size % 2 == 0:
            size, doublings = size // 2, doublings + 1
        if size == base and doublings >= 1:
            return base, doublings
    raise UserError(
        f"model dcgan cannot produce {image_size}x{image_size} images: the image size must be "
        "4 or 7 times a power of two (for example 28, 32, 64 or 128). Set dataset.image_size "
        "to such a size."
    )


class Generator(nn.Module):
    """With ``num_classes`` > 0 (set by a ``conditioning`` option), conditional on the label
    through an embedding of ``embed_dim`` joined to the latent vector."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64,
                 norm: str = "batch", num_classes: int = 0, embed_dim: int = 50):
        super().__init__()
        base, doublings = dcgan_layout(image_size)
        widths = [width * 2**i for i in reversed(range(doublings))]
        bias = norm == "none"
        self.num_classes = num_classes
        self.condition = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        z_dim = latent_dim + (embed_dim if num_classes else 0)
        layers = [nn.ConvTranspose2d(z_dim, widths[0], base, 1, 0, bias=bias),
                  norm_layer(norm, widths[0]), nn.ReLU(True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=bias),
                       norm_layer(norm, w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition is not None:
            z = self.condition(z, labels)
        return self.net(z.view(len(z), -1, 1, 1))


class Discriminator(nn.Module):
    """With ``num_classes`` > 0, the last layer is the ``conditioning`` head (a class of
    ``ganrun.nets.conditioning``) on the flattened last feature map."""

    def __init__(self, channels: int, image_size: int, width: int = 64, norm: str = "batch",
                 spectral_norm: bool = False, num_classes: int = 0,
                 conditioning: Callable[..., nn.Module] | None = None):
        super().__init__()
        base, doublings = dcgan_layout(image_size)
        widths = [width * 2**i for i in range(doublings)]
        bias = norm == "none"
        # No normalization on the first layer, as in the paper.
        layers = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=bias), norm_layer(norm, w_out),
                       nn.LeakyReLU(0.2, True)]
        self.head = None
        if num_classes:
            layers.append(nn.Flatten())
            self.head = conditioning(widths[-1] * base * base, num_classes)
        else:
            layers.append(nn.Conv2d(widths[-1], 1, base, 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        features = self.net(x)
        return features.flatten() if self.head is None else self.head(features, labels)
