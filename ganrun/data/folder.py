"""Image files from a folder tree (ImageFolder), and CelebA's aligned faces read the same way."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ganrun.data.base import GANDataModule, one_line, to_unit_range
from ganrun.data.decode import open_image
from ganrun.errors import UserError

log = logging.getLogger("ganrun")

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def is_image(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS and path.is_file()


def find_images(folder: Path) -> list[Path]:
    """The image files under ``folder``, sorted; empty (0-byte) files, which an interrupted
    copy leaves behind, are skipped with a warning rather than counted as images."""
    found = sorted(path for path in folder.rglob("*") if is_image(path))
    empty = [path for path in found if path.stat().st_size == 0]
    if empty:
        log.warning("Skipped %d empty (0-byte) image file(s) in %s, e.g. %s: delete or replace "
                    "them.", len(empty), folder, empty[0])
    return [path for path in found if path.stat().st_size > 0] if empty else found


def class_folders(folder: Path) -> list[Path]:
    """Direct sub-folders holding an image; any() stops at the first one, so this stays cheap."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [sub for sub in subfolders if any(is_image(p) for p in sub.rglob("*"))]


class ImageFiles(Dataset):
    """Images decoded on demand, centre-cropped to a square and resized to image_size."""

    def __init__(self, paths: list[Path], labels: list[int], image_size: int, mode: str,
                 owner: str | None = None):
        self.paths, self.labels, self.image_size, self.mode = paths, labels, image_size, mode
        self.owner = owner  # the data set's folder, named in the note about transparency

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, size = self.paths[index], self.image_size
        # fit() crops the centred square, then resizes (antialiased): the same as resizing
        # the shorter side and centre-cropping, e.g. CelebA's 178x218 -> 178x178 -> size.
        image = ImageOps.fit(open_image(path, self.mode, self.owner), (size, size),
                             Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.array(image)).view(size, size, -1).permute(2, 0, 1)
        return to_unit_range(pixels), self.labels[index]


class ImageFolder(GANDataModule):
    """Images under ``root``: each direct sub-folder holding images is a class, else no labels."""

    def __init__(self, root: str = "data/", download: bool = True, image_size: int = 64,
                 batch_size: int = 64, num_workers: int = 2, split: str = "train",
                 drop_last: bool = True, channels: int = 3):
        super().__init__(root, download, image_size, batch_size, num_workers, split, drop_last)
        if channels not in (1, 3):
            raise UserError(f"dataset.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")
        self.channels = channels
        self.folder = self.image_folder()
        names = [p.name for p in class_folders(self.folder)] if self.folder.is_dir() else []
        self.num_classes, self.class_names = len(names), names or None

    def image_folder(self) -> Path:
        return self.root

    def missing_message(self) -> str:
        return (f"The image folder {self.folder} does not exist. Set dataset.root to a folder of "
                "images; image_folder cannot download anything (dataset.download is ignored).")

    def load_split(self) -> ImageFiles:
        # A folder holds no train/test split: both splits serve every image.
        if not self.folder.is_dir():
            raise UserError(self.missing_message())
        classes = class_folders(self.folder)
        if len(classes) != self.num_classes:
            raise UserError(f"The class sub-folders of {self.folder} changed after the data module was "
                            "created (its num_classes is out of date). Create it again.")
        if classes:
            items = [(path, label) for label, sub in enumerate(classes) for path in find_images(sub)]
        else:
            items = [(path, 0) for path in find_images(self.folder)]
        if not items:
            raise UserError(f"No images found in {self.folder} (looked recursively for files ending "
                            f"in {', '.join(EXTENSIONS)}, any case). Set dataset.root to a folder of images.")
        paths, labels = zip(*items)
        return ImageFiles(list(paths), list(labels), self.image_size,
                          "RGB" if self.channels == 3 else "L", str(self.folder))


class CelebA(ImageFolder):
    """CelebA aligned faces, unlabelled, from torchvision's layout ``root/celeba/img_align_celeba/``."""

    def image_folder(self) -> Path:
        return self.root / "celeba" / "img_align_celeba"

    def missing_message(self) -> str:
        return (f"The CelebA images are missing: {self.folder} does not exist. Download "
                "img_align_celeba.zip (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) and extract "
                f"it in {self.root / 'celeba'} so that {self.folder}/ holds the .jpg files"
                + ("." if self.download else ", or set dataset.download=true to try the automatic download."))

    def prepare_data(self) -> None:
        if not self.download or self.folder.is_dir():
            return
        import torchvision  # only needed to download

        try:  # Google Drive, often over its quota
            torchvision.datasets.CelebA(str(self.root), split="all", download=True)
        except Exception as err:
            raise UserError(f"Downloading CelebA (dataset.download=true) failed: {one_line(err)}. "
                            + self.missing_message()) from err
