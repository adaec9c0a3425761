"""The ResNet generator and discriminator of SNGAN (Miyato et al. 2018, Table 4 for CIFAR-10).

The generator projects the latent vector to a ``base x base`` map (4 for 32x32, 7 for 28x28)
and doubles it with up-sampling residual blocks; the discriminator has spectral normalization
on every layer, two down-sampling residual blocks, two plain ones, ReLU and a global sum pool.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.nets.conditioning import LabelEmbedding, Unconditional
from ganrun.nets.dcgan import dcgan_layout
from ganrun.nets.layers import add_spectral_norm


class GBlock(nn.Module):
    """BN-ReLU-up-conv3-BN-ReLU-conv3, plus an up-sampled 1x1 shortcut."""

    def __init__(self, w_in: int, w_out: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(w_in), nn.BatchNorm2d(w_out)
        self.conv1, self.conv2 = nn.Conv2d(w_in, w_out, 3, 1, 1), nn.Conv2d(w_out, w_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(w_in, w_out, 1)

    def forward(self, x):
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """ReLU-conv3-ReLU-conv3 (then 2x2 average pooling when ``down``), plus a 1x1 shortcut.
    The first block skips the leading ReLU, which would clip the input image."""

    def __init__(self, w_in: int, w_out: int, down: bool, first: bool = False):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(w_in, w_out, 3, 1, 1), nn.Conv2d(w_out, w_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(w_in, w_out, 1) if down or w_in != w_out else nn.Identity()
        self.down, self.first = down, first

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        skip = x
        if self.first:  # the optimized block: pool, then project
            return self._pool(h) + self.shortcut(self._pool(skip))
        return self._pool(h) + self._pool(self.shortcut(skip))

    def _pool(self, x):
        return F.avg_pool2d(x, 2) if self.down else x


class Generator(nn.Module):
    """With ``num_classes`` > 0, conditional through a label embedding joined to z."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 256,
                 num_classes: int = 0, embed_dim: int = 50):
        super().__init__()
        self.base, doublings = dcgan_layout(image_size)
        self.width, self.latent_dim, self.num_classes = width, latent_dim, num_classes
        self.condition = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        z_dim = latent_dim + (embed_dim if num_classes else 0)
        self.project = nn.Linear(z_dim, self.base * self.base * width)
        self.blocks = nn.Sequential(*[GBlock(width, width) for _ in range(doublings)])
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(),
                                 nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition is not None:
            z = self.condition(z, labels)
        h = self.project(z.flatten(1)).view(len(z), self.width, self.base, self.base)
        return self.out(self.blocks(h))


class Discriminator(nn.Module):
    """With ``num_classes`` > 0, the output layer is the ``conditioning`` head."""

    def __init__(self, channels: int, image_size: int, width: int = 128, num_classes: int = 0,
                 conditioning: Callable[..., nn.Module] | None = None):
        super().__init__()
        dcgan_layout(image_size)  # the same sizes as the generator, with the same message
        self.blocks = nn.Sequential(DBlock(channels, width, down=True, first=True),
                                    DBlock(width, width, down=True),
                                    DBlock(width, width, down=False),
                                    DBlock(width, width, down=False))
        self.head = (conditioning if num_classes else Unconditional)(width, num_classes)
        add_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.head(h, labels)
