"""Degradations: paired training data made from any image data set. Each turns target images
(N, C, H, W) in [-1, 1] into the generator's inputs: smaller (``downscale``, for
super-resolution), with holes (``mask``, for inpainting; the mask rides along as an extra last
channel, 1 in the hole), or reduced to edges or gray (``edges``, ``grayscale``, quick pix2pix
demos). Each also offers the obvious non-learnt inverse (``baseline``) that a trained model has
to beat.

Random draws come from one ``torch.Generator`` per image seeded by that image's seed: in
training the seeds are drawn from the run's RNG (so a resumed run draws the same), for test
pairs they are fixed per image index, so evaluation pairs are identical on every run.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

import torch
import torch.nn.functional as F

from ganrun.data.appearance import edges as sobel_edges
from ganrun.errors import UserError

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L"


class Degradation:
    """Base class. ``scale``: target side / input side. ``has_mask``: the input's last channel
    is a hole mask."""

    scale = 1
    has_mask = False
    name = ""
    baseline_name: str | None = None  # the suffix of the baseline's metrics (psnr_<name>)

    def input_channels(self, channels: int) -> int:
        return channels

    def __call__(self, images: torch.Tensor, seeds: Sequence[int], train: bool) -> torch.Tensor:
        raise NotImplementedError

    def baseline(self, inputs: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        """(name, images shaped like the targets) from the inputs without learning, or None."""
        return None


def check_int(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise UserError(f"degrade.{name} must be an integer >= {low}, got {value!r}. Fix it in "
                        "the degrade config or on the command line (task.degrade.<key>=...).")


class Downscale(Degradation):
    """Bicubic down-sampling by ``factor`` (antialiased, like PIL's and MATLAB's imresize):
    the super-resolution pairs of SRGAN. The baseline is bicubic up-sampling."""

    name = "bicubic"
    baseline_name = "bicubic"

    def __init__(self, factor: int = 4):
        check_int("factor", factor, 2)
        self.scale = factor

    def __call__(self, images, seeds, train):
        height, width = images.shape[-2:]
        if height % self.scale or width % self.scale:
            raise UserError(f"degrade=downscale with factor {self.scale} needs image sides "
                            f"divisible by {self.scale}, got {height}x{width}. Change "
                            "dataset.image_size or task.degrade.factor.")
        size = (height // self.scale, width // self.scale)
        small = F.interpolate(images, size, mode="bicubic", antialias=True, align_corners=False)
        return small.clamp(-1, 1)

    def baseline(self, inputs):
        size = (inputs.shape[-2] * self.scale, inputs.shape[-1] * self.scale)
        up = F.interpolate(inputs, size, mode="bicubic", align_corners=False)
        return "bicubic", up.clamp(-1, 1)


def to_gray(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor(LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


class Grayscale(Degradation):
    """Luma only (one channel): colourization pairs."""

    def input_channels(self, channels):
        return 1

    def __call__(self, images, seeds, train):
        return to_gray(images)


class Edges(Degradation):
    """Sobel edge magnitude of the luma (one channel, outlines bright on black): a built-in
    stand-in for edges2shoes-style pairs."""

    def input_channels(self, channels):
        return 1

    def __call__(self, images, seeds, train):
        return sobel_edges(to_gray(images).add(1).div(2)).mul(2).sub(1)


class Mask(Degradation):
    """Holes set to 0 (mid-gray) and the mask (1 in the hole) appended as a last channel.

    Training masks (``train_masks=random``): the union of 1..``max_boxes`` rectangles (sides
    ``box_min``..``box_max`` of the image side) and 1..``max_strokes`` free-form strokes as
    DeepFill draws them (4-12 vertices, each segment up to ``stroke_length`` of the side,
    widths ``stroke_width`` of the side, 12-40 px at 256); ``train_masks=center``: the test box.
    Test masks (``test_masks=center``): a centred square of ``center`` x the side (64x64 of a
    128 image, as Pathak et al.); ``test_masks=random``: training-style masks from each image's
    fixed seed. The baseline fills the hole by diffusion from its border."""

    has_mask = True
    baseline_name = "fill"
    MASK_MODES = ("random", "center")

    def __init__(self, train_masks: str = "random", test_masks: str = "center",
                 center: float = 0.5, box_min: float = 0.2, box_max: float = 0.5,
                 max_boxes: int = 2, max_strokes: int = 3,
                 stroke_width: Sequence[float] = (0.047, 0.156), stroke_length: float = 0.16,
                 fill_iterations: int | None = None):
        for name, value in (("train_masks", train_masks), ("test_masks", test_masks)):
            if value not in self.MASK_MODES:
                raise UserError(f"degrade.{name} must be one of {', '.join(self.MASK_MODES)}, "
                                f"got {value!r}.")
        if not 0 < center < 1 or not 0 < box_min <= box_max < 1:
            raise UserError(f"degrade.center ({center}), box_min ({box_min}) and box_max "
                            f"({box_max}) are fractions of the image side: 0 < center < 1 and "
                            "0 < box_min <= box_max < 1.")
        check_int("max_boxes", max_boxes, 0)
        check_int("max_strokes", max_strokes, 0)
        if max_boxes + max_strokes == 0:
            raise UserError("degrade.max_boxes and degrade.max_strokes are both 0: random "
                            "masks would have no holes. Set one of them >= 1.")
        self.train_masks, self.test_masks, self.center = train_masks, test_masks, center
        self.box_min, self.box_max, self.max_boxes = box_min, box_max, max_boxes
        self.max_strokes, self.stroke_length = max_strokes, stroke_length
        self.stroke_width = tuple(stroke_width)
        self.fill_iterations = fill_iterations

    def input_channels(self, channels):
        return channels + 1

    def __call__(self, images, seeds, train):
        mode = self.train_masks if train else self.test_masks
        height, width = images.shape[-2:]
        if mode == "center":
            mask = center_box(height, width, self.center, images.device)
            mask = mask.expand(len(images), 1, -1, -1)
        else:
            mask = torch.stack([self.random_mask(height, width, int(seed)) for seed in seeds])
            if images.is_cuda:  # drawn on the host: a pinned copy does not wait for the device
                mask = mask.pin_memory()
        mask = mask.to(images.device, images.dtype, non_blocking=True)
        return apply_mask(images, mask)

    def random_mask(self, height: int, width: int, seed: int) -> torch.Tensor:
        # Python's own generator, seeded per image: the draws never touch a tensor.
        rng = random.Random(seed)

        def uniform(low: float = 0.0, high: float = 1.0) -> float:
            return rng.uniform(low, high)

        def count(high: int) -> int:  # 1..high, or 0 when high is 0
            return rng.randint(1, high) if high else 0

        mask = torch.zeros(height, width)
        for _ in range(count(self.max_boxes)):
            h = max(1, round(uniform(self.box_min, self.box_max) * height))
            w = max(1, round(uniform(self.box_min, self.box_max) * width))
            top, left = int(uniform() * (height - h + 1)), int(uniform() * (width - w + 1))
            mask[top:top + h, left:left + w] = 1
        side = min(height, width)
        for _ in range(count(self.max_strokes)):
            radius = max(0.75, uniform(*self.stroke_width) * side / 2)
            points = [(uniform() * height, uniform() * width)]
            for _ in range(int(uniform(4, 13))):
                angle, length = uniform(0, 2 * math.pi), uniform(0.2, 1) * self.stroke_length * side
                y, x = points[-1]
                points.append((min(max(y + length * math.sin(angle), 0), height - 1),
                               min(max(x + length * math.cos(angle), 0), width - 1)))
            mask = torch.maximum(mask, stroke(points, radius, height, width))
        return mask.unsqueeze(0)

    def baseline(self, inputs):
        known, mask = split_mask(inputs)
        return "fill", diffusion_fill(known, mask, self.fill_iterations)


def center_box(height: int, width: int, fraction: float, device=None) -> torch.Tensor:
    h, w = max(1, round(height * fraction)), max(1, round(width * fraction))
    top, left = (height - h) // 2, (width - w) // 2
    mask = torch.zeros(1, 1, height, width, device=device)
    mask[..., top:top + h, left:left + w] = 1
    return mask


def stroke(points, radius: float, height: int, width: int) -> torch.Tensor:
    """Pixels within ``radius`` of the polyline through ``points`` ((y, x) pixel centres)."""
    ys = torch.arange(height, dtype=torch.float32).view(-1, 1)
    xs = torch.arange(width, dtype=torch.float32).view(1, -1)
    inside = torch.zeros(height, width, dtype=torch.bool)
    for (y0, x0), (y1, x1) in zip(points, points[1:]):
        dy, dx = y1 - y0, x1 - x0
        t = ((ys - y0) * dy + (xs - x0) * dx) / max(dy * dy + dx * dx, 1e-9)
        t = t.clamp(0, 1)
        inside |= (ys - y0 - t * dy) ** 2 + (xs - x0 - t * dx) ** 2 <= radius**2
    return inside.float()


def apply_mask(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Holes (mask 1) set to 0, the mask appended as the last channel."""
    return torch.cat([images * (1 - mask), mask], 1)


def split_mask(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An inpainting input -> (the known pixels, the mask (N, 1, H, W) of 0/1)."""
    return inputs[:, :-1], (inputs[:, -1:] > 0.5).to(inputs.dtype)


def border_mean(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image and channel, the mean of the known pixels touching the hole."""
    ring = F.max_pool2d(mask, 3, stride=1, padding=1) * (1 - mask)
    total = ring.sum((2, 3), keepdim=True)
    means = (known * ring).sum((2, 3), keepdim=True) / total.clamp(min=1)
    fallback = (known * (1 - mask)).sum((2, 3), keepdim=True) / \
        (1 - mask).sum((2, 3), keepdim=True).clamp(min=1)
    return torch.where(total > 0, means, fallback)


def diffusion_fill(known: torch.Tensor, mask: torch.Tensor,
                   iterations: int | None = None) -> torch.Tensor:
    """The hole filled by harmonic (Laplace) interpolation of its border: started from the
    border mean, each step sets every hole pixel to the mean of its 4 neighbours (Jacobi)."""
    filled = known * (1 - mask) + border_mean(known, mask) * mask
    iterations = iterations or 4 * max(known.shape[-2:])
    kernel = known.new_tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]])
    kernel = kernel.view(1, 1, 3, 3).repeat(known.shape[1], 1, 1, 1)
    for _ in range(iterations):
        neighbours = F.conv2d(F.pad(filled, (1, 1, 1, 1), mode="replicate"), kernel,
                              groups=known.shape[1])
        filled = known * (1 - mask) + neighbours * mask
    return filled
