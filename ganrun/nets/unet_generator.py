"""The U-Net generator of pix2pix (Isola et al. 2017): an encoder of stride-2 4x4 convs down
to a bottleneck and a mirrored decoder, each decoder stage also fed the encoder stage of the
same size (skip connections), so fine detail of the input reaches the output directly.
Built like the reference (junyanz/pytorch-CycleGAN-and-pix2pix ``UnetGenerator``)."""

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.init import init_normal
from ganrun.nets.translation_norm import check_norm, conv_bias, translation_norm

MAX_WIDTH_FACTOR = 8  # channels stop doubling at 8 * width
MAX_DOWNS = 8         # the reference's unet_256: 256 -> 1


def downs_for(image_size: int) -> int:
    """Halvings until the side is odd (28 -> 2, 32 -> 5, 256 -> 8), at most MAX_DOWNS."""
    downs = 0
    while image_size % 2 == 0 and image_size > 1 and downs < MAX_DOWNS:
        image_size //= 2
        downs += 1
    return downs


class SkipBlock(nn.Module):
    """down -> inner -> up, with the input concatenated to the output (except outermost)."""

    def __init__(self, outer: int, inner: int, in_channels: int, submodule: nn.Module | None,
                 outermost: bool, norm: str, dropout: bool, out_channels: int | None = None):
        super().__init__()
        bias = conv_bias(norm)
        self.outermost = outermost
        down = nn.Conv2d(in_channels, inner, 4, stride=2, padding=1, bias=bias)
        up_in = inner if submodule is None else 2 * inner
        if outermost:
            layers = [down, submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, out_channels, 4, stride=2, padding=1), nn.Tanh()]
        elif submodule is None:  # innermost: no norm at the bottleneck (it is 1x1 at 256)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias),
                      translation_norm(norm, outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, translation_norm(norm, inner), submodule,
                      nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias),
                      translation_norm(norm, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """Images (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1], for
    sides divisible by ``2**num_downs``. ``num_downs`` null: as many halvings as
    ``image_size`` allows (8 for 256, as unet_256). Dropout 0.5 in the inner 8*width blocks
    (levels 4 .. num_downs-2 from the outside), as in the reference, which uses it as G's noise."""

    def __init__(self, in_channels: int, out_channels: int, image_size: int = 256,
                 num_downs: int | None = None, width: int = 64, norm: str = "batch",
                 dropout: bool = True):
        super().__init__()
        check_norm(norm, "UnetGenerator")
        num_downs = downs_for(image_size) if num_downs is None else num_downs
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("width", width, 1), ("num_downs", num_downs, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"UnetGenerator needs {name} to be an integer >= {low}, got "
                                f"{value!r} (num_downs comes from the image size {image_size} "
                                "when null). Fix it in the model.generator config, or use "
                                "images whose side is even.")
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs

        def channels(level: int) -> int:
            return width * min(2**level, MAX_WIDTH_FACTOR)

        block = None
        for level in reversed(range(1, num_downs)):
            block = SkipBlock(channels(level - 1), channels(level),
                              channels(level - 1), block, outermost=False, norm=norm,
                              dropout=block is not None and level >= 4 and dropout)
        self.model = SkipBlock(None, width, in_channels, block, outermost=True, norm=norm,
                               dropout=False, out_channels=out_channels) if block else \
            nn.Sequential(nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.ReLU(True),
                          nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1),
                          nn.Tanh())
        init_normal(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise UserError(
                f"UnetGenerator with num_downs={self.num_downs} needs image sides divisible by "
                f"{self.size_multiple}, got {height}x{width}. Resize or crop the images, or set "
                "model.generator.num_downs lower.")
        return self.model(images)
