"""The LightningDataModule shared by every data set, and the in-memory dataset behind MNIST and CIFAR-10."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ganrun.data.sampler import DeviceBatches, ResumableSampler
from ganrun.errors import UserError

SPLITS = ("train", "test")


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1], the range of the generator's tanh output."""
    return images.float().div_(127.5).sub_(1)


def one_line(err: BaseException) -> str:
    """An exception's text squeezed onto one line, so that it fits in a one-paragraph UserError."""
    return " ".join(str(err).split()).rstrip(".") or type(err).__name__


class TensorImages(Dataset):
    """A whole split held as one uint8 tensor (N, C, H, W) plus int64 labels (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, image_size: int):
        self.images, self.labels, self.image_size = images, labels, image_size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.__getitems__([index])
        return images[0], labels[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # The DataLoader passes the whole batch of indices here (see torch/utils/data/_utils/fetch.py):
        # one index op and one resize per batch instead of one per image and a collate.
        images = to_unit_range(self.images[indices])
        if images.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size, mode="bilinear", antialias=True, align_corners=False)
        return images, self.labels[indices]


def keep_batch(batch):
    """collate_fn for datasets whose __getitems__ already returns the finished batch."""
    return batch


MAX_WORKERS = 256  # data loader processes: more than any machine's cores needs


def check_options(image_size, batch_size, num_workers, split) -> None:
    problems = [
        f"dataset.{name} must be an integer >= {low}, got {value!r}"
        for name, value, low in (("image_size", image_size, 1), ("batch_size", batch_size, 1),
                                 ("num_workers", num_workers, 0))
        if not isinstance(value, int) or isinstance(value, bool) or value < low
    ]
    if isinstance(num_workers, int) and num_workers > MAX_WORKERS:
        problems.append(f"dataset.num_workers must be at most {MAX_WORKERS} (each worker is a "
                        f"process), got {num_workers}")
    if split not in SPLITS:
        problems.append(f"dataset.split must be one of {', '.join(SPLITS)}, got {split!r}")
    if problems:
        raise UserError("Invalid dataset options: " + "; ".join(problems)
                        + ". Fix them in the dataset config or on the command line.")


class GANDataModule(pl.LightningDataModule):
    """Options and the shuffled loader common to all data sets; subclasses load one split in load_split().

    Subclasses set ``channels``, ``image_size`` and ``num_classes`` (0: no labels) before setup(),
    because the networks are built from them.
    """

    channels: int
    num_classes: int
    class_names: list[str] | None = None  # names of labels 0..num_classes-1, where known

    def __init__(self, root, download, image_size, batch_size, num_workers, split, drop_last,
                 on_device: bool = False):
        super().__init__()
        check_options(image_size, batch_size, num_workers, split)
        if on_device and num_workers:
            raise UserError(f"dataset.on_device=true serves batches from the training device in "
                            f"the main process, so it cannot use dataset.num_workers={num_workers}. "
                            "Set dataset.num_workers=0, or dataset.on_device=false.")
        self.on_device = bool(on_device)
        self.root = Path(root).expanduser()
        self.download, self.image_size, self.batch_size = bool(download), image_size, batch_size
        self.num_workers, self.split, self.drop_last = num_workers, split, bool(drop_last)
        self.dataset: Dataset | None = None
        self.resume_position = {"epoch": 0, "batches": 0}

    def load_split(self) -> Dataset:
        raise NotImplementedError

    def shape(self) -> dict:
        """What the networks need to know about the data (saved in every checkpoint and
        export as plain data): channels, image size, classes; a data set adds its own."""
        names = self.class_names
        return {"image_size": self.image_size, "num_classes": self.num_classes,
                "class_names": list(names) if names else None, "channels": self.channels}

    def with_split(self, split: str) -> "GANDataModule":
        """The same data set and options serving another split (e.g. "test" for FID)."""
        check_options(self.image_size, self.batch_size, self.num_workers, split)
        other = copy.copy(self)
        other.split, other.dataset = split, None
        return other

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        dataset = self.load_split()
        if self.drop_last and len(dataset) < self.batch_size:
            raise UserError(
                f"The {self.split} split of {type(self).__name__} in {self.root} has only {len(dataset)} "
                f"images, fewer than dataset.batch_size={self.batch_size}, so every batch would be dropped. "
                "Lower dataset.batch_size, set dataset.drop_last=false, or add images.")
        self.dataset = dataset

    def resume_at(self, epoch: int, batches: int) -> None:
        """Make the next train_dataloader() continue an interrupted run's data order."""
        self.resume_position = {"epoch": epoch, "batches": batches}

    def batches_per_epoch(self) -> int:
        size = len(self.dataset)
        return size // self.batch_size if self.drop_last else math.ceil(size / self.batch_size)

    def to_training_device(self) -> None:
        """Moves the in-memory split (uint8, e.g. 47 MB for MNIST) to the Trainer's device once;
        each batch is then one index op there, with no copy from host memory per step."""
        device = self.trainer.strategy.root_device if self.trainer is not None else None
        if device is not None and self.dataset.images.device != device:
            self.dataset.images = self.dataset.images.to(device)
            self.dataset.labels = self.dataset.labels.to(device)

    def single_process(self) -> bool:
        return self.trainer is None or self.trainer.world_size == 1

    def train_dataloader(self) -> DataLoader:
        self.setup()  # lets scripts (e.g. FID) use the loader without a Trainer calling setup()
        if self.on_device:
            self.to_training_device()
        batched = hasattr(self.dataset, "__getitems__")
        # Seeded from the run's seed (set by seed_everything), so the order is repeatable and a
        # resumed run continues it exactly. Lightning's first iter() comes before set_epoch().
        sampler = ResumableSampler(len(self.dataset), seed=torch.initial_seed())
        epoch, batches = self.resume_position["epoch"], self.resume_position["batches"]
        if batches >= self.batches_per_epoch():
            epoch, batches = epoch + 1, 0  # stopped on an epoch's last batch: Lightning moves on
        sampler.set_epoch(epoch)
        sampler.start_at(batches * self.batch_size)
        # The loader's own generator: its base seed draw never moves the global RNG.
        generator = torch.Generator().manual_seed(torch.initial_seed())
        if self.on_device and batched and self.single_process():
            # Index tensors on the device: no copy from host memory per batch. (Under DDP,
            # Lightning shards the sampler of a plain DataLoader, which the path below keeps.)
            return DataLoader(self.dataset, collate_fn=keep_batch, generator=generator,
                              batch_sampler=DeviceBatches(sampler, self.batch_size,
                                                          self.drop_last,
                                                          self.dataset.images.device))
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            generator=generator,
            drop_last=self.drop_last,
            collate_fn=keep_batch if batched else None,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available() and not self.on_device,  # device tensors cannot be pinned
            persistent_workers=self.num_workers > 0,
        )
