"""The fully connected GAN of Goodfellow et al. 2014."""

import math

import torch
from torch import nn

from ganrun.nets.layers import add_spectral_norm, norm_layer


def _mlp(sizes: list[int], activation: nn.Module, norm: str, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), norm_layer(norm, n_out, dims=1), activation]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, image_size: int,
                 hidden: tuple[int, ...] = (256, 512, 1024), norm: str = "none"):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        sizes = [latent_dim, *hidden]
        self.net = nn.Sequential(*_mlp(sizes, nn.ReLU(True), norm, 0.0),
                                 nn.Linear(sizes[-1], math.prod(self.shape)), nn.Tanh())
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.flatten(1)).view(len(z), *self.shape)


class Discriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, hidden: tuple[int, ...] = (1024, 512, 256),
                 norm: str = "none", dropout: float = 0.3, spectral_norm: bool = False):
        super().__init__()
        # Dropout in D follows the paper's regularization (it used maxout + dropout).
        sizes = [channels * image_size * image_size, *hidden]
        self.net = nn.Sequential(*_mlp(sizes, nn.LeakyReLU(0.2, True), norm, dropout),
                                 nn.Linear(sizes[-1], 1))
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).flatten()
