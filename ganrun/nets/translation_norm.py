"""The normalization layers of the translation networks, as the reference implementation
(junyanz/pytorch-CycleGAN-and-pix2pix) builds them, so that layer shapes match its networks."""

from torch import nn

from ganrun.errors import UserError

TRANSLATION_NORMS = ("instance", "batch", "none")


def check_norm(norm: str, network: str) -> None:
    if norm not in TRANSLATION_NORMS:
        raise UserError(f"{network} got norm={norm!r}, which is not a normalization it knows. "
                        f"Set its norm option to one of: {', '.join(TRANSLATION_NORMS)}.")


def translation_norm(norm: str, features: int) -> nn.Module:
    if norm == "instance":
        # Statistics of the image itself, in training and at test time alike (pix2pix/CycleGAN).
        return nn.InstanceNorm2d(features, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(features)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """The reference's rule: a bias only with instance norm. Batch norm's learnt shift makes a
    bias redundant; the reference keeps one under instance norm (whose mean subtraction cancels
    it, so it is harmless) and has none without a norm. Same rule, same parameters."""
    return norm == "instance"
