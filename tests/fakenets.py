"""Networks for tests: a class-conditional generator whose images show their label, and a
'network' multiplying by a constant, so that task losses can be computed by hand."""

import torch
from torch import nn


class LabelledGenerator(nn.Module):
    """Conditional on ``num_classes`` labels: class k gives a flat image of level -1 + 0.2 k
    (pixel 25.5 k) plus a faint latent-dependent pattern, so a test can read the label back."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, num_classes: int = 10,
                 hidden=None, norm: str = "none"):
        super().__init__()
        self.num_classes, self.shape = num_classes, (channels, image_size, image_size)
        self.net = nn.Linear(latent_dim, channels * image_size * image_size)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        level = (-1 + 0.2 * labels.float()).view(-1, 1, 1, 1)
        return level + 0.01 * torch.tanh(self.net(z)).view(len(z), *self.shape)


class Scale(nn.Module):
    """A 'network' multiplying by a learnable constant: losses can be computed by hand."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x):
        return x * self.factor
