"""StyleGAN2's building blocks: equalized-learning-rate layers, the FIR filter for up- and
downsampling, bias + leaky ReLU with its gain, and the modulated convolution."""

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2)


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
