"""Small building blocks shared by the networks."""

from torch import nn

from ganrun.errors import UserError

NORMS = ("batch", "instance", "layer", "none")


def norm_layer(kind: str, features: int, dims: int = 2) -> nn.Module:
    """A normalization layer by name, so that `norm` can be a plain config string."""
    if kind == "batch":
        return nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)
    if kind == "instance" and dims == 2:
        return nn.InstanceNorm2d(features, affine=True)
    if kind == "layer":
        # GroupNorm with one group normalizes over (C, H, W) per sample: layer norm for convs.
        return nn.GroupNorm(1, features) if dims == 2 else nn.LayerNorm(features)
    if kind == "none":
        return nn.Identity()
    valid = ", ".join(NORMS if dims == 2 else ("batch", "layer", "none"))
    raise UserError(f"Unknown normalization '{kind}'. Valid choices are: {valid}.")


def dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02) and norm scales from N(1, 0.02), as in Radford et al. 2015."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d)):
        if module.weight is not None:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every conv and linear layer: each weight
    is divided by its largest singular value, estimated by one power iteration per forward."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module
