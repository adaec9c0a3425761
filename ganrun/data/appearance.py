"""Fixed appearance changes that turn grayscale images into a second visual domain, so that
unpaired translation can be trained and measured offline (ganrun.data.unpaired.FashionDomains).
Each maps float images (N, 1, H, W) in [0, 1] to (N, C, H, W) in [0, 1]."""

import torch
import torch.nn.functional as F

# A duotone ramp: black -> dark blue, white -> warm yellow; far from gray in colour and in
# brightness, so the two domains differ clearly in FID.
TINT_DARK = (0.10, 0.12, 0.45)
TINT_LIGHT = (1.00, 0.85, 0.25)
# The largest Sobel response of a [0, 1] image along one axis: 1 + 2 + 1.
SOBEL_RANGE = 4.0


def invert(images: torch.Tensor) -> torch.Tensor:
    return 1 - images


def tint(images: torch.Tensor) -> torch.Tensor:
    dark = torch.tensor(TINT_DARK).view(1, 3, 1, 1)
    light = torch.tensor(TINT_LIGHT).view(1, 3, 1, 1)
    return dark + images * (light - dark)


def edges(images: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude: outlines bright on black, clipped at one axis's full range."""
    # The Sobel kernels are separable: (1, 2, 1) smoothing across, (-1, 0, 1) difference along;
    # slicing is several times faster than conv2d with its 1-channel kernels on a CPU.
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    rows = padded[..., :-2, :] + 2 * padded[..., 1:-1, :] + padded[..., 2:, :]
    columns = padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]
    across = rows[..., 2:] - rows[..., :-2]
    down = columns[..., 2:, :] - columns[..., :-2, :]
    return torch.hypot(across, down).div(SOBEL_RANGE).clamp(0, 1)


APPEARANCES = {"invert": invert, "tint": tint, "edges": edges}
APPEARANCE_CHANNELS = {"invert": 1, "tint": 3, "edges": 1}

CHUNK = 8192  # images per step, so a 3-channel float copy of a whole split is never held


def change_appearance(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 images (N, 1, H, W) -> uint8 images under the appearance change ``name``."""
    changed = [APPEARANCES[name](chunk.float() / 255).mul(255).round().to(torch.uint8)
               for chunk in images.split(CHUNK)]
    return torch.cat(changed)
