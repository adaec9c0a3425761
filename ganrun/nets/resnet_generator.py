"""The ResNet generator of CycleGAN (Zhu et al. 2017), after Johnson et al.'s style-transfer
network: down-sample, residual blocks at low resolution, up-sample. Fully convolutional, so
one trained network translates images of any size divisible by ``2**n_downsampling``."""

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.init import init_normal
from ganrun.nets.translation_norm import check_norm, conv_bias, translation_norm


class ResnetBlock(nn.Module):
    """x + (conv, norm, ReLU, [dropout], conv, norm)(x), with reflection padding so that image
    borders do not see a frame of zeros."""

    def __init__(self, channels: int, norm: str, dropout: bool):
        super().__init__()
        bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                  translation_norm(norm, channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                   translation_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Images (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: bool = False, n_downsampling: int = 2):
        super().__init__()
        check_norm(norm, "ResnetGenerator")
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("width", width, 1), ("n_blocks", n_blocks, 0),
                                 ("n_downsampling", n_downsampling, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"ResnetGenerator needs {name} to be an integer >= {low}, got "
                                f"{value!r}. Fix it in the model.generator config.")
        self.n_downsampling = n_downsampling
        self.size_multiple = 2**n_downsampling  # input sides must divide by this
        bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
                  translation_norm(norm, width), nn.ReLU(True)]
        for i in range(n_downsampling):
            w = width * 2**i
            layers += [nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=bias),
                       translation_norm(norm, 2 * w), nn.ReLU(True)]
        deepest = width * 2**n_downsampling
        layers += [ResnetBlock(deepest, norm, dropout) for _ in range(n_blocks)]
        for i in reversed(range(n_downsampling)):
            w = width * 2**i
            layers += [nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias),
                       translation_norm(norm, w), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def check_size(self, height: int, width: int) -> None:
        """Each stride-2 conv halves the size and each transposed conv doubles it, so only sizes
        divisible by 2**n_downsampling come back unchanged."""
        step = 2**self.n_downsampling
        if height % step or width % step:
            raise UserError(
                f"ResnetGenerator with n_downsampling={self.n_downsampling} needs image sides "
                f"divisible by {step}, got {height}x{width}. Resize or crop the images to such a "
                f"size (e.g. {height // step * step or step}x{width // step * step or step}), "
                "or change dataset.crop_size / dataset.image_size.")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_size(*images.shape[-2:])
        return self.net(images)
