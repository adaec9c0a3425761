"""Opening a user's image file as 8-bit grayscale or RGB, whatever its bit depth and alpha.

PIL's ``convert("L")`` clips a 16-bit image at 255 (mid-gray 32768/65535 becomes white), so
16- and 32-bit pixels are scaled by the file's range instead. Transparent pixels are composited
onto a white background (as a web page or an image viewer shows them); a data set says so once
per process, naming the first such file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from ganrun.data.base import one_line
from ganrun.errors import UserError

log = logging.getLogger("ganrun")

BACKGROUND = 255  # white: the background transparent pixels are composited onto
HIGH_DEPTH = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535,
              "F": 1.0}
_warned: set[str] = set()  # data sets (folders) whose transparency was reported


def open_image(path: Path, mode: str, owner: str | None = None,
               max_pixels: int | None = None) -> Image.Image:
    """The image at ``path`` in ``mode`` ("L" or "RGB"), 8 bits per channel; a ``UserError``
    naming the file when it cannot be decoded, or when it has more than ``max_pixels`` pixels
    (checked from its header, before anything is decoded). ``owner`` names the data set in the
    one-time note about transparency (default: the file's folder)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise UserError(f"{path} is {width}x{height} pixels, more than the "
                                f"{max_pixels:,} pixels this command takes. Give a smaller "
                                "image (or crop it).")
            image.load()
            return to_8bit(image, mode, path, owner)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as err:
        raise UserError(f"{path} is not a readable image ({one_line(err)}). "
                        "Delete or replace the file.") from err


def to_8bit(image: Image.Image, mode: str, path: Path, owner: str | None = None) -> Image.Image:
    if image.mode in HIGH_DEPTH:
        pixels = np.asarray(image, dtype=np.float64) / HIGH_DEPTH[image.mode]
        gray = Image.fromarray(np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8), "L")
        return gray.convert(mode)
    if has_alpha(image):
        note_transparency(path, owner)
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
        return Image.alpha_composite(background, rgba).convert(mode)
    return image.convert(mode)


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or \
        (image.mode == "P" and "transparency" in image.info)


def note_transparency(path: Path, owner: str | None) -> None:
    key = owner or str(Path(path).parent)
    if key in _warned:
        return
    _warned.add(key)
    log.warning("%s has transparent pixels (the first such file: %s): they are composited onto "
                "a white background. Flatten the images yourself to choose another.", key, path)
