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

from ganrun.nets.stylegan2.discriminator import Discriminator, MinibatchStd
from ganrun.nets.stylegan2.generator import NOISE_MODES, Generator, MappingNetwork, SynthesisNetwork
from ganrun.nets.stylegan2.layers import filter2d, fir_filter, modulated_conv2d

__all__ = ["Discriminator", "MinibatchStd", "NOISE_MODES", "Generator", "MappingNetwork",
           "SynthesisNetwork", "filter2d", "fir_filter", "modulated_conv2d"]
