"""Images of a folder tree as uint8 RGB batches, for `ganrun eval real=DIR fake=DIR`."""

from collections import defaultdict
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ganrun.data.base import one_line
from ganrun.data.decode import open_image
from ganrun.data.folder import find_images
from ganrun.errors import UserError


def list_images(folder: str | Path, what: str) -> list[Path]:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"The {what} folder '{folder}' does not exist. Give a folder of images "
                        "(png, jpg, ...), e.g. one written by `ganrun sample`.")
    paths = find_images(folder)
    if not paths:
        raise UserError(f"The {what} folder '{folder}' holds no images (png, jpg, jpeg, bmp, "
                        "webp, gif, tif). Point it at a folder of image files.")
    return paths


def read_rgb(path: Path) -> torch.Tensor:
    pixels = np.array(open_image(path, "RGB"))  # grayscale repeated to 3 channels
    return torch.from_numpy(pixels).permute(2, 0, 1)


def batches(paths: list[Path], batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of same-size images, each resized by the feature network itself (no resize here:
    a second resize would change the numbers). Sizes are read from the headers first."""
    by_size: dict[tuple, list[Path]] = defaultdict(list)
    for path in paths:
        try:
            with Image.open(path) as image:
                by_size[image.size].append(path)
        except (OSError, ValueError) as err:
            raise UserError(f"{path} is not a readable image ({one_line(err)}). "
                            "Delete or replace the file.") from err
    for group in by_size.values():
        it = iter(group)
        while chunk := list(islice(it, batch_size)):
            yield torch.stack([read_rgb(path) for path in chunk])
