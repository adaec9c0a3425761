"""DiffAugment (Zhao et al. 2020): differentiable color, translation and cutout augmentations
applied to every image D sees, real and fake, in both players' updates, so that D cannot
memorize a small data set while G still gets gradients through the augmentation.

Each call draws fresh random parameters per image from the global torch RNG; it runs inside the
training step only, so seeded runs and exact resumes stay reproducible. Follows the authors'
PyTorch code (github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py).
"""

import torch
import torch.nn.functional as F


class DiffAugment:
    def __init__(self, color: bool = True, translation: float = 0.125, cutout: float = 0.5):
        """``translation``: the largest shift as a fraction of the image size (0: none);
        ``cutout``: the side of the erased square as a fraction of the image size (0: none)."""
        self.color, self.translation, self.cutout = color, translation, cutout

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.color:
            x = contrast(saturation(brightness(x)))
        if self.translation > 0:
            x = translate(x, self.translation)
        if self.cutout > 0:
            x = cut_out(x, self.cutout)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment({vars(self)})"


def _per_image(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(len(x), 1, 1, 1, dtype=x.dtype, device=x.device)


def brightness(x):
    return x + (_per_image(x) - 0.5)


def saturation(x):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_per_image(x) * 2) + mean


def contrast(x):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_image(x) + 0.5) + mean


def translate(x, ratio: float):
    """Shifts each image by up to ``ratio`` of its size, filling with zeros."""
    n, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, size=(n, 1, 1), device=x.device)
    dx = torch.randint(-shift_w, shift_w + 1, size=(n, 1, 1), device=x.device)
    batch, rows, cols = torch.meshgrid(torch.arange(n, device=x.device),
                                       torch.arange(h, device=x.device),
                                       torch.arange(w, device=x.device), indexing="ij")
    rows = torch.clamp(rows + dy + 1, 0, h + 1)
    cols = torch.clamp(cols + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cut_out(x, ratio: float):
    """Zeroes one square of side ``ratio`` times the image size at a random place per image."""
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - size_h % 2), size=(n, 1, 1), device=x.device)
    left = torch.randint(0, w + (1 - size_w % 2), size=(n, 1, 1), device=x.device)
    batch, rows, cols = torch.meshgrid(torch.arange(n, device=x.device),
                                       torch.arange(size_h, device=x.device),
                                       torch.arange(size_w, device=x.device), indexing="ij")
    rows = torch.clamp(rows + top - size_h // 2, min=0, max=h - 1)
    cols = torch.clamp(cols + left - size_w // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[batch, rows, cols] = 0
    return x * mask.unsqueeze(1)
