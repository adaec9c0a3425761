"""StyleGAN2 (Karras et al. 2020) networks in pure PyTorch, after NVIDIA's stylegan2-ada-pytorch
``training/networks.py`` (no compiled ops, so they run on a CPU as on a GPU).

Generator: a mapping network (z, and for a conditional model an embedded one-hot label, each
normalized by its 2nd moment, through ``mapping_layers`` fully connected layers with a
learning-rate multiplier of 0.01) makes w; the synthesis network starts from a learned 4x4
constant and at each resolution applies two modulated 3x3 convolutions (the first upsampling x2
with the [1, 3, 3, 1] FIR filter) with per-pixel noise of learned strength, and a ToRGB layer
(modulated 1x1, no demodulation) whose output is added to the upsampled image of the previous
resolution ("skip" architecture). The mapping tracks ``w_avg``, the running mean of w (in
training mode only), the centre of the truncation trick.

Discriminator: per resolution two 3x3 convolutions (the second downsampling x2 with the FIR
filter), with a residual 1x1 path ("resnet", the default) or without ("orig"); an epilogue at
4x4 with the minibatch standard deviation channel, a 3x3 convolution and two fully connected
layers; for a conditional model the output is projected onto a mapped label embedding.

Every layer uses the equalized learning rate: weights drawn from N(0, 1) / lr_multiplier and
scaled at run time by lr_multiplier / sqrt(fan_in). Channels per resolution are
``min(channel_base // resolution, channel_max)``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.errors import UserError

LRELU_GAIN = math.sqrt(2)
NOISE_MODES = ("random", "const", "none")


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def fir_filter(taps=(1, 3, 3, 1), gain: float = 1.0) -> torch.Tensor:
    """The 2-D separable low-pass filter of ``taps``, normalized to sum ``gain``."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f * (gain / f.sum())


def filter2d(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], down: int = 1):
    """Each channel convolved with ``f`` after zero padding ``pad`` (before, after) on both axes,
    keeping every ``down``-th output."""
    channels = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = f.to(x.dtype)[None, None].expand(channels, 1, *f.shape)
    return F.conv2d(x, weight, stride=down, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 upsampling: zeros between the samples, then the FIR filter (gain 4), as upfirdn2d."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    return filter2d(up, f * 4, pad=(2, 1))


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 downsampling: the FIR filter, then every second sample."""
    return filter2d(x, f, pad=(1, 1), down=2)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, lrelu: bool, gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Bias, leaky ReLU (slope 0.2, gain sqrt 2) or linear, extra gain, optional clamp."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
        gain = gain * LRELU_GAIN
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnected(nn.Module):
    """Equalized-lr linear layer: weight N(0, 1) / lr_multiplier, scaled by
    lr_multiplier / sqrt(in_features) at run time; bias scaled by lr_multiplier."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool = False,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        x = x.matmul((self.weight * self.weight_gain).to(x.dtype).t())
        return bias_act(x, self.bias * self.bias_gain, self.lrelu)


class Conv2d(nn.Module):
    """Equalized-lr convolution, optionally downsampling x2 with the FIR filter first (3x3:
    filter with padding 2 then stride 2; 1x1: FIR downsampling then the 1x1 conv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 lrelu: bool = True, down: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.lrelu, self.down, self.conv_clamp = lrelu, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x, gain: float = 1.0):
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down == 1:
            x = F.conv2d(x, w, padding=self.padding)
        elif w.shape[-1] == 1:
            x = F.conv2d(downsample2d(x, self.resample_filter), w)
        else:
            x = F.conv2d(filter2d(x, self.resample_filter, pad=(2, 2)), w, stride=2)
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return bias_act(x, self.bias, self.lrelu, gain, clamp)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, up: bool = False,
                     resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """The convolution with weights ``weight * styles`` per sample (input channels scaled),
    each output channel divided by its weight norm when ``demodulate``; computed as NVIDIA's
    non-fused path does: scale the activations, convolve with the shared weight, scale the
    output. ``up``: x2 upsampling as a stride-2 transposed convolution followed by the FIR
    filter (gain 4)."""
    n = x.shape[0]
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    w = weight.to(x.dtype)
    if up:
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        x = filter2d(x, resample_filter * 4, pad=(1, 1))
    else:
        x = F.conv2d(x, w, padding=w.shape[-1] // 2)
    if demodulate:
        per_sample = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
        dcoefs = (per_sample.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


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
