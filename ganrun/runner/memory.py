"""How much memory a run needs, estimated before anything big is allocated: a run that cannot
fit is one paragraph in a second, not an out-of-memory crash a minute later.

The estimate is a lower bound: the networks' parameters counted on PyTorch's meta device (no
memory), times what training keeps per parameter (the weights, their gradients, Adam's two
moments, an EMA copy where there is one), plus the images of one batch at full resolution as
the networks see them (inputs, outputs, their gradients and the activations of the layers at
full resolution: at least 64 single-channel images' worth). A run estimated above the memory of the device it trains on
is refused; below, it may still run out (activations grow with the networks' width).
"""

from __future__ import annotations

import os

import torch

from ganrun.errors import UserError

BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and two Adam moments
IMAGE_COPIES = 64  # activations: a few layers of at least 8 channels at full resolution


def device_memory(accelerator: str) -> tuple[int, str]:
    """(bytes, a name) of the memory a run on ``accelerator`` has: the first GPU's, else RAM."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory, "the GPU's memory"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's RAM"
    except (ValueError, OSError, AttributeError):
        return 0, "memory"


def parameters_of(build) -> int | None:
    """The parameters ``build()`` makes, counted on the meta device (None where it cannot be
    built there)."""
    try:
        with torch.device("meta"):
            built = build()
        return sum(p.numel() for p in built.parameters())
    except Exception:  # a network that needs real tensors to be built: no estimate
        return None


def gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def check_training_memory(build, shape: dict, batch_size: int, accelerator: str) -> None:
    """A ``UserError`` when the run's estimate exceeds the memory it would train in."""
    available, where = device_memory(accelerator)
    if not available:
        return
    params = parameters_of(build)
    channels = shape.get("channels") or \
        (shape.get("channels_a", 0) + shape.get("channels_b", 0)) or 3
    size = shape.get("image_size") or 1
    images = IMAGE_COPIES * batch_size * channels * size * size * 4
    weights = (params or 0) * BYTES_PER_PARAMETER
    if weights + images <= available:
        return
    raise UserError(
        f"This run needs more than {where} ({gb(available)}): at least {gb(weights + images)}, "
        f"{gb(weights)} for {params or 0:,} parameters with their gradients and optimizer "
        f"states, and {gb(images)} for {batch_size} images of {channels}x{size}x{size} as the "
        "networks see them. Lower dataset.image_size, dataset.batch_size, model.latent_dim or "
        "the networks' width, or train on a machine with more memory.")
