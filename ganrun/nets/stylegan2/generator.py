"""StyleGAN2's generator: the mapping network (z -> w, tracking ``w_avg``) and the skip
synthesis network of modulated convolutions with noise inputs."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.errors import UserError
from ganrun.nets.stylegan2.layers import (FullyConnected, bias_act, fir_filter,
                                          modulated_conv2d, normalize_2nd_moment, upsample2d)

NOISE_MODES = ("random", "const", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (demodulated), noise input, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", fir_filter(), persistent=False)
        # The equalized-lr gain of the weight cancels in demodulation; the styles carry no gain.

    def forward(self, x, w, noise_mode: str = "random"):
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up,
                             resample_filter=self.resample_filter)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, self.resolution, self.resolution,
                                device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        return bias_act(x, self.bias, lrelu=True, clamp=self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 convolution without demodulation (equalized-lr gain on the styles)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (const | upsampling conv0), conv1, ToRGB added to
    the upsampled image so far. Takes ``num_conv + 1`` ws; the ToRGB's w is the next block's
    first."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, conv_clamp: float | None = None):
        super().__init__()
        self.first = in_channels == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True,
                                        conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if self.first else 2
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x, img, ws, noise_mode: str = "random"):
        ws = ws.unbind(dim=1)
        if self.first:
            x = self.conv1(self.const.unsqueeze(0).expand(len(ws[0]), -1, -1, -1), ws[0],
                           noise_mode)
        else:
            x = self.conv0(x, ws[0], noise_mode)
            x = self.conv1(x, ws[1], noise_mode)
        y = self.torgb(x, ws[self.num_conv]).float()
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


def check_resolution(image_size: int) -> int:
    log2 = int(math.log2(image_size)) if image_size > 0 else 0
    if image_size < 8 or 2 ** log2 != image_size:
        raise UserError(f"StyleGAN2 makes square images whose side is a power of two (8, 16, 32, "
                        f"64, ... 1024), but the data set's image_size is {image_size}. Set "
                        "dataset.image_size to a power of two: e.g. dataset.image_size=32 for "
                        "28x28 Fashion-MNIST/MNIST (resized on loading).")
    return log2


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, image_size: int, channels: int, channel_base: int = 32768,
                 channel_max: int = 512, conv_clamp: float | None = None):
        super().__init__()
        log2 = check_resolution(image_size)
        self.w_dim, self.resolutions = w_dim, [2 ** i for i in range(2, log2 + 1)]
        self.blocks = nn.ModuleList()
        for res in self.resolutions:
            in_channels = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            self.blocks.append(SynthesisBlock(in_channels,
                                              channels_at(res, channel_base, channel_max),
                                              w_dim, res, channels, conv_clamp))
        # One w per conv, plus the last ToRGB's.
        self.num_ws = sum(block.num_conv for block in self.blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise UserError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got "
                            f"'{noise_mode}'.")
        ws, x, img, index = ws.float(), None, None, 0
        for block in self.blocks:
            x, img = block(x, img, ws.narrow(1, index, block.num_conv + 1), noise_mode)
            index += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """z (and a one-hot label) -> w, broadcast to ``num_ws`` copies; tracks ``w_avg``."""

    def __init__(self, z_dim: int, num_classes: int, w_dim: int, num_ws: int | None,
                 num_layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.num_classes, self.num_ws = z_dim, num_classes, num_ws
        self.w_avg_beta = w_avg_beta
        embed = w_dim if num_classes else 0
        if num_classes:
            self.embed = FullyConnected(num_classes, embed)
        features = [z_dim + embed] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            FullyConnected(a, b, lrelu=True, lr_multiplier=lr_multiplier)
            for a, b in zip(features[:-1], features[1:]))
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, labels=None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = True):
        parts = [normalize_2nd_moment(z.float())] if self.z_dim else []
        if self.num_classes:
            if labels is None:
                raise UserError("This StyleGAN2 generator is class-conditional: give it labels.")
            one_hot = F.one_hot(labels.long(), self.num_classes).float()
            parts.append(normalize_2nd_moment(self.embed(one_hot)))
        x = torch.cat(parts, dim=1)
        for layer in self.layers:
            x = layer(x)
        x = x.float()  # w in fp32 under autocast too, as w_avg
        if self.w_avg_beta is not None and self.training and update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x


class Generator(nn.Module):
    """``G(z, labels)`` -> images in about [-1, 1]; ``G.mapping`` and ``G.synthesis`` apart
    give w-space access (truncation, style mixing, interpolation)."""

    style_based = True  # task=stylegan2 and its sampler drive the mapping and synthesis apart

    def __init__(self, latent_dim: int, channels: int, image_size: int, num_classes: int = 0,
                 w_dim: int = 512, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995, channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = None):
        super().__init__()
        self.latent_dim, self.num_classes, self.w_dim = latent_dim, num_classes, w_dim
        self.synthesis = SynthesisNetwork(w_dim, image_size, channels, channel_base,
                                          channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(latent_dim, num_classes, w_dim, self.num_ws,
                                      mapping_layers, mapping_lr_multiplier, w_avg_beta)

    def forward(self, z, labels=None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random"):
        ws = self.mapping(z, labels, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise_mode)
