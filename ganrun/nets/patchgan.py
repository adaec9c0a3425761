"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017): a fully
convolutional net whose every output judges one patch of the input (70x70 for n_layers=3),
so it scores texture and style at any image size."""

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.init import init_normal
from ganrun.nets.translation_norm import check_norm, conv_bias, translation_norm

MAX_WIDTH_FACTOR = 8  # channels stop doubling at 8 * width, as in the reference


class PatchDiscriminator(nn.Module):
    """Images (N, in_channels, H, W) -> one realness logit per patch, (N, 1, H', W')."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        check_norm(norm, "PatchDiscriminator")
        if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
            raise UserError(f"PatchDiscriminator needs n_layers to be an integer >= 1, got "
                            f"{n_layers!r}. Fix it in the model.discriminator config (3 gives "
                            "70x70 patches).")
        bias = conv_bias(norm)
        # No norm on the first layer, as in DCGAN (Radford et al. 2015), where a norm at the
        # discriminator's input made training oscillate.
        layers = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        w_in = width
        for n in range(1, n_layers + 1):
            w_out = width * min(2**n, MAX_WIDTH_FACTOR)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(w_in, w_out, 4, stride=stride, padding=1, bias=bias),
                       translation_norm(norm, w_out), nn.LeakyReLU(0.2, True)]
            w_in = w_out
        layers.append(nn.Conv2d(w_in, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
