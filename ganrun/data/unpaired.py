"""Unpaired two-domain data for image-to-image translation (CycleGAN): a user's folder in the
standard trainA/trainB/testA/testB layout, and two domains built offline from Fashion-MNIST.

Batches are dicts: ``{"A": (N, channels_a, H, W), "B": (N, channels_b, H, W)}`` in [-1, 1],
plus ``"label_A"`` and ``"label_B"`` (int64) where the domains come from a labelled data set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ganrun.data.appearance import APPEARANCE_CHANNELS, change_appearance
from ganrun.data.base import GANDataModule, keep_batch, to_unit_range
from ganrun.data.decode import open_image
from ganrun.data.folder import EXTENSIONS, find_images
from ganrun.data.mnist import MNIST, FashionMNIST
from ganrun.data.unpaired_sampler import UnpairedSampler
from ganrun.errors import UserError

DOMAINS = ("A", "B")


class UnpairedItems(Dataset):
    """Items are ``(index_a, index_b, item_seed)`` from an UnpairedSampler; an item seed of None
    means no augmentation. ``__getitems__`` returns the finished batch dict."""

    size_a: int
    size_b: int

    def __len__(self) -> int:
        return max(self.size_a, self.size_b)

    def __getitem__(self, item) -> dict:
        return {key: value[0] for key, value in self.__getitems__([item]).items()}

    def __getitems__(self, items: list) -> dict:
        raise NotImplementedError

    def fixed_items(self, n: int) -> dict:
        """The first n images of each domain, repeated cyclically where a domain has fewer."""
        return self.__getitems__([(k % self.size_a, k % self.size_b, None) for k in range(n)])


class UnpairedDataModule(GANDataModule):
    """What every unpaired data set exposes: ``channels_a``, ``channels_b``, ``image_size``,
    ``num_classes`` (0: unlabelled), ``class_names`` and ``fixed_batch()``; plus the
    GANDataModule machinery (``with_split``, ``resume_at``, ``batches_per_epoch``)."""

    channels_a: int
    channels_b: int
    dataset: UnpairedItems | None

    @property
    def channels(self) -> int:  # "channels": the output side, B
        return self.channels_b

    def shape(self) -> dict:
        return {**super().shape(), "channels_a": self.channels_a, "channels_b": self.channels_b}

    def train_dataloader(self) -> DataLoader:
        # GANDataModule's loader places its sampler where a resumed run continues (epoch and
        # offset, from resume_at); the unpaired sampler takes that place, so one rule serves both.
        # Building that loader starts no worker processes.
        place = super().train_dataloader().sampler
        sampler = UnpairedSampler(self.dataset.size_a, self.dataset.size_b, seed=place.seed)
        sampler.set_epoch(place.epoch)
        sampler.start_at(place.start)
        # Its own generator: without one, every iter() draws the workers' base seed from the
        # global RNG at each epoch start, which a run resumed at an epoch's end would not do.
        return DataLoader(self.dataset, batch_size=self.batch_size, sampler=sampler,
                          generator=torch.Generator().manual_seed(place.seed),
                          drop_last=self.drop_last, collate_fn=keep_batch,
                          num_workers=self.num_workers, pin_memory=torch.cuda.is_available(),
                          persistent_workers=self.num_workers > 0)

    def fixed_batch(self, n: int, split: str = "test") -> dict:
        """n images per domain, the same on every call and without augmentation: for the sample
        grid and the metrics. Each call reads the split again: keep the batch."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"fixed_batch needs n >= 1 images, got {n!r}")
        data = self.with_split(split)
        data.drop_last = False  # a split smaller than a batch still gives its fixed images
        data.setup()
        return data.dataset.fixed_items(n)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"dataset.{name} must be one of {', '.join(map(str, choices))}, got "
                        f"{value!r}. Fix it in the dataset config or on the command line.")


# --- A user's folder ----------------------------------------------------------------------------

def read_image(path: Path, mode: str) -> Image.Image:
    return open_image(path, mode)


class UnpairedFiles(UnpairedItems):
    """Image files of two domains, decoded on demand. With augmentation (training): resized to
    load_size x load_size, randomly cropped to crop_size and randomly flipped; without: resized
    to crop_size x crop_size."""

    def __init__(self, paths: dict[str, list[Path]], modes: dict[str, str], load_size: int,
                 crop_size: int, augment: bool, flip: bool):
        self.paths, self.modes = paths, modes
        self.size_a, self.size_b = len(paths["A"]), len(paths["B"])
        self.load_size, self.crop_size = load_size, crop_size
        self.augment, self.flip = augment, flip

    def __getitems__(self, items: list) -> dict:
        batch = {"A": [], "B": []}
        for index_a, index_b, item_seed in items:
            generator = None
            if self.augment and item_seed is not None:
                generator = torch.Generator().manual_seed(item_seed)
            batch["A"].append(self.load("A", index_a, generator))
            batch["B"].append(self.load("B", index_b, generator))
        return {domain: torch.stack(images) for domain, images in batch.items()}

    def load(self, domain: str, index: int, generator: torch.Generator | None) -> torch.Tensor:
        image = read_image(self.paths[domain][index], self.modes[domain])
        if generator is None:
            image = image.resize((self.crop_size, self.crop_size), Image.Resampling.BICUBIC)
        else:
            image = self.random_crop_and_flip(image, generator)
        pixels = torch.from_numpy(np.array(image)).view(self.crop_size, self.crop_size, -1)
        return to_unit_range(pixels.permute(2, 0, 1))

    def random_crop_and_flip(self, image: Image.Image, generator: torch.Generator) -> Image.Image:
        load, crop = self.load_size, self.crop_size
        image = image.resize((load, load), Image.Resampling.BICUBIC)
        top, left = torch.randint(load - crop + 1, (2,), generator=generator).tolist()
        image = image.crop((left, top, left + crop, top + crop))
        mirror = torch.rand((), generator=generator) < 0.5  # drawn always: flip=false keeps the stream
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if self.flip and mirror else image


def pil_mode(channels: int) -> str:
    return "RGB" if channels == 3 else "L"  # PIL's "L" uses the ITU-R 601 luma weights


def check_folder_options(load_size, crop_size, flip, channels_a, channels_b) -> None:
    for name, value in (("load_size", load_size), ("crop_size", crop_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"dataset.{name} must be an integer >= 1, got {value!r}. Fix it in "
                            "the dataset config or on the command line.")
    if crop_size > load_size:
        raise UserError(f"dataset.crop_size={crop_size} is larger than dataset.load_size="
                        f"{load_size}: training images are resized to load_size and then cropped "
                        "to crop_size. Set load_size >= crop_size (the reference uses 286 and 256).")
    check_choice("flip", flip, (True, False))
    check_choice("channels_a", channels_a, (1, 3))
    check_choice("channels_b", channels_b, (1, 3))


class UnpairedFolder(UnpairedDataModule):
    """Two unpaired image domains in the layout of the public CycleGAN data sets (horse2zebra,
    monet2photo, maps, ...): ``root/trainA``, ``root/trainB``, ``root/testA``, ``root/testB``.
    Images of any size; ``image_size`` is ``crop_size``."""

    num_classes = 0
    class_names = None

    def __init__(self, root: str = "data/", load_size: int = 286, crop_size: int = 256,
                 flip: bool = True, channels_a: int = 3, channels_b: int = 3, batch_size: int = 1,
                 num_workers: int = 4, split: str = "train", drop_last: bool = True):
        check_folder_options(load_size, crop_size, flip, channels_a, channels_b)
        super().__init__(root, False, crop_size, batch_size, num_workers, split, drop_last)
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.channels_a, self.channels_b = channels_a, channels_b

    def load_split(self) -> UnpairedFiles:
        paths = {domain: self.domain_images(domain) for domain in DOMAINS}
        modes = {"A": pil_mode(self.channels_a), "B": pil_mode(self.channels_b)}
        return UnpairedFiles(paths, modes, self.load_size, self.crop_size,
                             augment=self.split == "train", flip=self.flip)

    def domain_images(self, domain: str) -> list[Path]:
        folder = self.root / f"{self.split}{domain}"
        if not folder.is_dir():
            raise UserError(
                f"The unpaired data set {self.root} has no {folder.name} folder ({folder} does not "
                "exist). dataset=unpaired_folder expects dataset.root to hold four folders of "
                "images, trainA/, trainB/, testA/ and testB/ (domain A and domain B, for training "
                "and testing), as in the public CycleGAN data sets such as horse2zebra. Set "
                f"dataset.root to such a folder, or create {folder} with the domain's images.")
        images = find_images(folder)
        if not images:
            raise UserError(f"The domain folder {folder} holds no images (looked recursively for "
                            f"files ending in {', '.join(EXTENSIONS)}, any case). Put domain "
                            f"{domain}'s {self.split} images there.")
        return images


# --- Two domains from a labelled data set -------------------------------------------------------

class TensorDomains(UnpairedItems):
    """Two domains held in memory as uint8 images (N, C, H, W) with int64 labels (N,)."""

    def __init__(self, images: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]):
        self.images, self.labels = images, labels
        self.size_a, self.size_b = len(images["A"]), len(images["B"])

    def __getitems__(self, items: list) -> dict:
        # One index op per domain and batch (the fixed appearance changes were applied offline).
        index = dict(zip(DOMAINS, (list(column) for column in zip(*items))))
        batch = {domain: to_unit_range(self.images[domain][index[domain]]) for domain in DOMAINS}
        batch.update({f"label_{domain}": self.labels[domain][index[domain]] for domain in DOMAINS})
        return batch


class OneDomain(Dataset):
    """One domain of labelled two-domain items as ``(images, labels)`` batches: what a
    classifier of that domain trains on (label preservation)."""

    def __init__(self, items: TensorDomains, domain: str):
        self.items, self.domain = items, domain
        self.labels = items.labels[domain]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]):
        pick = [(i, 0, None) if self.domain == "A" else (0, i, None) for i in indices]
        batch = self.items.__getitems__(pick)
        return batch[self.domain], batch[f"label_{self.domain}"]


SOURCES = {"fashion_mnist": FashionMNIST, "mnist": MNIST}


class FashionDomains(UnpairedDataModule):
    """Domain A: the plain grayscale images at even indices of a split of Fashion-MNIST (or
    MNIST, ``source=mnist``); domain B: the disjoint odd-index half under a fixed appearance
    change, ``transform`` = ``invert`` (1 - x), ``tint`` (a duotone in RGB, so B has 3 channels)
    or ``edges`` (Sobel edge maps). ``image_size`` 32 pads the 28x28 images with background.
    The labels are there to measure translation (label preservation), not to train on."""

    channels_a = 1
    num_classes = 10

    def __init__(self, root: str = "data/", download: bool = True, transform: str = "tint",
                 image_size: int = 32, batch_size: int = 64, num_workers: int = 0,
                 split: str = "train", drop_last: bool = True, source: str = "fashion_mnist"):
        check_choice("transform", transform, tuple(APPEARANCE_CHANNELS))
        check_choice("image_size", image_size, (28, 32))
        check_choice("source", source, tuple(SOURCES))
        super().__init__(root, download, image_size, batch_size, num_workers, split, drop_last)
        self.transform, self.source = transform, source
        self.channels_b = APPEARANCE_CHANNELS[transform]
        self.class_names = SOURCES[source].class_names

    def source_data(self) -> MNIST:
        return SOURCES[self.source](str(self.root), self.download, 28, self.batch_size, 0, self.split)

    def prepare_data(self) -> None:
        self.source_data().prepare_data()

    def load_split(self) -> TensorDomains:
        source = self.source_data().load_split()
        border = (self.image_size - 28) // 2
        images = F.pad(source.images, (border,) * 4)  # 0 is the background of both data sets
        return TensorDomains(
            images={"A": images[0::2], "B": change_appearance(images[1::2], self.transform)},
            labels={"A": source.labels[0::2], "B": source.labels[1::2]})
