"""SRResNet (Ledig et al. 2017, the generator of SRGAN): residual blocks at the input's
resolution and a long skip, then ``log2(scale)`` sub-pixel convolution stages (conv to 4x the
channels, PixelShuffle(2)), so the output is ``scale`` times larger than the input."""

import math

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.init import init_normal
from ganrun.nets.translation_norm import check_norm, translation_norm


class ResidualBlock(nn.Module):
    """x + (conv, norm, PReLU, conv, norm)(x)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), translation_norm(norm, channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1), translation_norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """Images (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, scale*H, scale*W) in
    [-1, 1]. ``scale`` (1, 2, 4, 8...) comes from the task (the degradation's factor); with
    scale 1 it is a plain residual image-to-image network."""

    size_multiple = 1  # any size: no down-sampling

    def __init__(self, in_channels: int, out_channels: int, scale: int = 4, width: int = 64,
                 n_blocks: int = 16, norm: str = "batch"):
        super().__init__()
        check_norm(norm, "SRResNet")
        if not isinstance(scale, int) or scale < 1 or scale & (scale - 1):
            raise UserError(f"SRResNet upsamples by powers of 2 (pixel shuffle x2 stages), got "
                            f"scale={scale!r}. Use a factor of 1, 2, 4 or 8.")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width, norm) for _ in range(n_blocks)],
                                  nn.Conv2d(width, width, 3, padding=1),
                                  translation_norm(norm, width))
        ups = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                    nn.PReLU(width)]
        self.tail = nn.Sequential(*ups, nn.Conv2d(width, out_channels, 9, padding=4), nn.Tanh())
        init_normal(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.head(images)
        return self.tail(features + self.body(features))
