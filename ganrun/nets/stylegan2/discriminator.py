"""StyleGAN2's discriminator: resnet or orig blocks with FIR downsampling, the minibatch
standard deviation layer, and the projection epilogue for conditional models."""

import math

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.stylegan2.generator import MappingNetwork, channels_at, check_resolution
from ganrun.nets.stylegan2.layers import Conv2d, FullyConnected


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int,
                 img_channels: int, architecture: str = "resnet",
                 conv_clamp: float | None = None):
        super().__init__()
        self.resnet = architecture == "resnet"
        if in_channels == 0:
            self.fromrgb = Conv2d(img_channels, tmp_channels, 1, conv_clamp=conv_clamp)
        self.conv0 = Conv2d(tmp_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = Conv2d(tmp_channels, out_channels, 3, down=2, conv_clamp=conv_clamp)
        if self.resnet:
            self.skip = Conv2d(tmp_channels, out_channels, 1, bias=False, lrelu=False, down=2)

    def forward(self, x, img):
        if x is None:
            x = self.fromrgb(img)
        if self.resnet:
            y = self.skip(x, gain=math.sqrt(0.5))
            return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return self.conv1(self.conv0(x))


class MinibatchStd(nn.Module):
    """Appends the standard deviation of each feature over groups of ``group_size`` samples,
    averaged over features and pixels, as ``num_channels`` extra channels. A batch that the
    group size does not divide uses the largest group size below it that does."""

    def __init__(self, group_size: int | None = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """``D(images, labels)`` -> logits (N,). ``architecture``: resnet (default) or orig."""

    def __init__(self, channels: int, image_size: int, num_classes: int = 0,
                 architecture: str = "resnet", channel_base: int = 32768,
                 channel_max: int = 512, mbstd_group: int = 4, mbstd_channels: int = 1,
                 conv_clamp: float | None = None, cmap_dim: int | None = None,
                 mapping_layers: int = 8):
        super().__init__()
        if architecture not in ("resnet", "orig"):
            raise UserError(f"model.discriminator.architecture must be resnet or orig, got "
                            f"'{architecture}'.")
        log2 = check_resolution(image_size)
        self.num_classes = num_classes
        ch = lambda res: channels_at(res, channel_base, channel_max)  # noqa: E731
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(0 if res == image_size else ch(res), ch(res), ch(res // 2),
                               channels, architecture, conv_clamp)
            for res in (2 ** i for i in range(log2, 2, -1)))
        self.cmap_dim = (cmap_dim or ch(4)) if num_classes else 0
        if num_classes:
            # NVIDIA's label mapping for D: the one-hot label through a mapping network.
            self.mapping = MappingNetwork(0, num_classes, self.cmap_dim, None,
                                          num_layers=mapping_layers, w_avg_beta=None)
        self.mbstd = MinibatchStd(mbstd_group, mbstd_channels) if mbstd_channels else None
        self.conv = Conv2d(ch(4) + mbstd_channels, ch(4), 3, conv_clamp=conv_clamp)
        self.fc = FullyConnected(ch(4) * 16, ch(4), lrelu=True)
        self.out = FullyConnected(ch(4), self.cmap_dim or 1)

    def forward(self, img, labels=None):
        x = None
        for block in self.blocks:
            x = block(x, img)
        if self.mbstd is not None:
            x = self.mbstd(x.float())
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.num_classes:
            cmap = self.mapping(None, labels)
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x.flatten()
