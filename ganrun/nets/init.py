"""The weight initialization of the image-to-image translation networks (pix2pix, CycleGAN)."""

from torch import nn

CONVS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)


def init_normal(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Every conv and linear weight from N(0, gain), norm scales from N(1, gain), biases 0.

    This is the reference implementation's default ("normal", init_gain 0.02); norms without a
    learnt scale (instance norm with affine=False) have nothing to initialize.
    """
    for layer in module.modules():
        if isinstance(layer, CONVS):
            nn.init.normal_(layer.weight, 0.0, gain)
        elif isinstance(layer, NORMS) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, gain)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module
