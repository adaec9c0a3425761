"""Coupled networks of CoGAN (Liu & Tuzel 2016): two generators that share every layer but
their last, and two discriminators that share every layer but their first. The shared layers
learn what the domains have in common (shapes), the unshared ones what tells them apart
(appearance), so one latent vector gives a pair of corresponding images without any pair
ever being shown."""

import torch
from torch import nn

from ganrun.nets.dcgan import dcgan_layout
from ganrun.nets.layers import dcgan_init


class CoupledGenerator(nn.Module):
    """``G(z)`` -> images of both domains, (N, 2, C, H, W): index 0 is domain A, 1 domain B."""

    coupled = True

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 32):
        super().__init__()
        base, doublings = dcgan_layout(image_size)
        widths = [width * 2**i for i in reversed(range(doublings))]
        layers = [nn.ConvTranspose2d(latent_dim, widths[0], base, 1, 0, bias=False),
                  nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(w_out), nn.ReLU(True)]
        self.shared = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh())
            for _ in range(2))
        self.latent_dim = latent_dim
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        features = self.shared(z.view(len(z), -1, 1, 1))
        return torch.stack([head(features) for head in self.heads], dim=1)


class CoupledDiscriminator(nn.Module):
    """``D(x, domain)`` -> real/fake logits (N,) of images of one domain (0: A, 1: B)."""

    coupled = True

    def __init__(self, channels: int, image_size: int, width: int = 32):
        super().__init__()
        base, doublings = dcgan_layout(image_size)
        widths = [width * 2**i for i in range(doublings)]
        self.firsts = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True))
            for _ in range(2))
        layers = []
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, base, 1, 0))
        self.shared = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        return self.shared(self.firsts[domain](x)).flatten()
