"""Scatter plots of 2-D points as image tensors, for TensorBoard and PNG files.

Drawn with PIL (already a dependency) rather than matplotlib: a plot costs a few milliseconds,
needs no GUI backend, and ganrun gains no heavy dependency for one picture.
"""

import numpy as np
import torch
from PIL import Image, ImageDraw

REAL = (70, 110, 200)       # blue
GENERATED = (230, 90, 30)   # orange
AXES = (200, 200, 200)


def scatter_image(generated: torch.Tensor, real: torch.Tensor | None = None,
                  size: int = 320, limit: float = 1.0) -> torch.Tensor:
    """Points (N, 2) in data units drawn on [-limit, limit]^2: real ones (if given) under the
    generated ones, with a legend. Returns a float (3, size, size) image in [0, 1]."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    middle = size // 2
    draw.line([(0, middle), (size, middle)], fill=AXES)
    draw.line([(middle, 0), (middle, size)], fill=AXES)
    draw.rectangle([0, 0, size - 1, size - 1], outline=AXES)
    for points, color in ((real, REAL), (generated, GENERATED)):
        if points is not None:
            _dots(draw, _pixels(points, size, limit), color)
    _legend(draw, real is not None)
    array = np.asarray(image, dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _pixels(points: torch.Tensor, size: int, limit: float) -> np.ndarray:
    """Data coordinates -> pixel coordinates, y up; points outside the plot are dropped."""
    xy = points.detach().float().cpu().reshape(-1, 2).numpy()
    xy = xy[np.isfinite(xy).all(axis=1) & (np.abs(xy) <= limit).all(axis=1)]
    col = (xy[:, 0] + limit) / (2 * limit) * (size - 1)
    row = (limit - xy[:, 1]) / (2 * limit) * (size - 1)
    return np.stack([col, row], axis=1)


def _dots(draw: ImageDraw.ImageDraw, pixels: np.ndarray, color) -> None:
    for x, y in pixels:
        draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=color)


def _legend(draw: ImageDraw.ImageDraw, with_real: bool) -> None:
    entries = ([("real", REAL)] if with_real else []) + [("generated", GENERATED)]
    for i, (text, color) in enumerate(entries):
        y = 6 + 14 * i
        draw.rectangle([6, y + 3, 12, y + 9], fill=color)
        draw.text((16, y), text, fill=(40, 40, 40))
