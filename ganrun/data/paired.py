"""Paired image data for image-to-image translation (pix2pix): a user's folder in one of the
two layouts of the pix2pix data sets.

- ``root/train``, ``root/test`` (or ``root/val``) of A|B images: each file holds the input and
  the target side by side (facades, maps, edges2shoes, ...), split down the middle;
- ``root/A/<split>`` and ``root/B/<split>``: inputs and targets as separate files with matching
  names (the layout the reference's ``combine_A_and_B.py`` starts from); the extensions may
  differ.

Batches are dicts ``{"A": inputs (N, channels_a, S, S), "B": targets (N, channels_b, S, S)}``
in [-1, 1] (``direction=BtoA`` swaps the two sides). Training pairs get the same random crop
and flip on both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganrun.data.base import to_unit_range
from ganrun.data.folder import EXTENSIONS, find_images
from ganrun.data.unpaired import (UnpairedDataModule, UnpairedItems, check_choice,
                                  check_folder_options, pil_mode, read_image)
from ganrun.errors import UserError

DIRECTIONS = ("AtoB", "BtoA")


def header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        read_image(path, "RGB")  # raises the data sets' one-paragraph error
        raise err


class PairedFiles(UnpairedItems):
    """Pairs decoded on demand. Items come from the unpaired sampler, ``(index, _, seed)``:
    the pair is read by the first index (the sampler's random second index is unused), the
    seed draws one crop and flip for both sides (None: no augmentation, resized to crop_size)."""

    def __init__(self, pairs: list[tuple[Path, Path | None]], modes: dict[str, str],
                 load_size: int, crop_size: int, augment: bool, flip: bool, swap: bool):
        self.pairs, self.modes = pairs, modes
        self.size_a = self.size_b = len(pairs)
        self.load_size, self.crop_size = load_size, crop_size
        self.augment, self.flip = augment, flip
        self.swap = swap

    def __getitems__(self, items: list) -> dict:
        batch = {"A": [], "B": []}
        for index, _, item_seed in items:
            seed = item_seed if self.augment else None
            first, second = self.halves(index)
            if self.swap:
                first, second = second, first
            for domain, image in (("A", first), ("B", second)):
                generator = None if seed is None else torch.Generator().manual_seed(seed)
                batch[domain].append(self.finish(image.convert(self.modes[domain]), generator))
        return {domain: torch.stack(images) for domain, images in batch.items()}

    def halves(self, index: int) -> tuple[Image.Image, Image.Image]:
        left, right = self.pairs[index]
        if right is not None:
            return read_image(left, "RGB"), read_image(right, "RGB")
        image = read_image(left, "RGB")
        half = image.width // 2
        return image.crop((0, 0, half, image.height)), image.crop((half, 0, 2 * half, image.height))

    def finish(self, image: Image.Image, generator: torch.Generator | None) -> torch.Tensor:
        """Resized to crop_size (test), or to load_size, cropped and flipped by ``generator``
        (seeded alike for both sides, so both get the same window and flip)."""
        crop = self.crop_size
        if generator is None:
            image = image.resize((crop, crop), Image.Resampling.BICUBIC)
        else:
            load = self.load_size
            image = image.resize((load, load), Image.Resampling.BICUBIC)
            top, left = torch.randint(load - crop + 1, (2,), generator=generator).tolist()
            image = image.crop((left, top, left + crop, top + crop))
            if torch.rand((), generator=generator) < 0.5 and self.flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = torch.from_numpy(np.array(image)).view(crop, crop, -1)
        return to_unit_range(pixels.permute(2, 0, 1))


class PairedFolder(UnpairedDataModule):
    """Paired images in a pix2pix layout (see the module doc); ``split=test`` reads
    ``test/`` or, where there is none, ``val/``. Every pair is checked when a split is loaded
    (file headers only): an A|B file must have an even width, and A/ and B/ files must match
    by name and size."""

    num_classes = 0
    class_names = None
    paired = True

    def __init__(self, root: str = "data/", direction: str = "AtoB", load_size: int = 286,
                 crop_size: int = 256, flip: bool = True, channels_a: int = 3,
                 channels_b: int = 3, batch_size: int = 1, num_workers: int = 4,
                 split: str = "train", drop_last: bool = True):
        check_folder_options(load_size, crop_size, flip, channels_a, channels_b)
        check_choice("direction", direction, DIRECTIONS)
        super().__init__(root, False, crop_size, batch_size, num_workers, split, drop_last)
        self.direction, self.flip = direction, flip
        self.load_size, self.crop_size = load_size, crop_size
        self.channels_a, self.channels_b = channels_a, channels_b

    def load_split(self) -> PairedFiles:
        pairs = self.side_by_side_pairs() if self.side_by_side() else self.folder_pairs()
        modes = {"A": pil_mode(self.channels_a), "B": pil_mode(self.channels_b)}
        return PairedFiles(pairs, modes, self.load_size, self.crop_size,
                           augment=self.split == "train", flip=self.flip,
                           swap=self.direction == "BtoA")

    def split_names(self) -> list[str]:
        return ["train"] if self.split == "train" else ["test", "val"]

    def side_by_side(self) -> bool:
        return any((self.root / name).is_dir() for name in ("train", "test", "val")) and \
            not (self.root / "A").is_dir()

    def split_folder(self, base: Path) -> Path:
        for name in self.split_names():
            if (base / name).is_dir():
                return base / name
        raise UserError(
            f"The paired data set {self.root} has no {' or '.join(self.split_names())} folder "
            f"under {base}. dataset=paired_folder expects either root/train and root/test (or "
            "root/val) holding A|B images side by side, or root/A/train, root/A/test, "
            "root/B/train, root/B/test with matching file names. Set dataset.root to such a "
            "folder, or create the missing one.")

    def images_in(self, folder: Path) -> list[Path]:
        images = find_images(folder)
        if not images:
            raise UserError(f"The folder {folder} holds no images (looked recursively for files "
                            f"ending in {', '.join(EXTENSIONS)}, any case). Put the "
                            f"{self.split} pairs there.")
        return images

    def side_by_side_pairs(self) -> list[tuple[Path, None]]:
        folder = self.split_folder(self.root)
        images = self.images_in(folder)
        for path in images:
            width, height = header_size(path)
            if width % 2:
                raise UserError(
                    f"{path} is {width}x{height}: an A|B pair image holds input and target side "
                    "by side, so its width must be even (two halves of equal width). Fix or "
                    "remove the file, or use the A/ and B/ folder layout.")
        return [(path, None) for path in images]

    def folder_pairs(self) -> list[tuple[Path, Path]]:
        if not (self.root / "A").is_dir() or not (self.root / "B").is_dir():
            self.split_folder(self.root)  # raises the layout error
        folder_a, folder_b = self.split_folder(self.root / "A"), self.split_folder(self.root / "B")
        by_name = {}
        for side, folder in (("A", folder_a), ("B", folder_b)):
            by_name[side] = {p.relative_to(folder).with_suffix("").as_posix(): p
                             for p in self.images_in(folder)}
        for side, other in (("A", "B"), ("B", "A")):
            unmatched = sorted(set(by_name[side]) - set(by_name[other]))
            if unmatched:
                path = by_name[side][unmatched[0]]
                raise UserError(
                    f"{path} has no partner in {folder_b if side == 'A' else folder_a}: "
                    f"dataset=paired_folder pairs the files of A/ and B/ by name (extensions may "
                    f"differ), and {len(unmatched)} file(s) of {side}/ have none. Add "
                    f"{unmatched[0]}.* to {other}/, or remove the file.")
        pairs = [(by_name["A"][name], by_name["B"][name]) for name in sorted(by_name["A"])]
        for path_a, path_b in pairs:
            size_a, size_b = header_size(path_a), header_size(path_b)
            if size_a != size_b:
                raise UserError(
                    f"{path_b} is {size_b[0]}x{size_b[1]} but its partner {path_a} is "
                    f"{size_a[0]}x{size_a[1]}: the two sides of a pair must be the same size, "
                    "pixel for pixel. Resize one of them, or remove the pair.")
        return pairs
