"""MNIST and Fashion-MNIST: 28x28 grayscale, 10 classes, held in memory, read from IDX files."""

from __future__ import annotations

from pathlib import Path

import torch

from ganrun.data.base import GANDataModule, TensorImages, one_line
from ganrun.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from ganrun.errors import UserError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_FILES = FILES["train"] + FILES["test"]


class MNIST(GANDataModule):
    """MNIST digits; the IDX files are looked for in ``root``, then in torchvision's ``root/MNIST/raw``."""

    name = "MNIST"  # torchvision's class and folder name
    hint = ""
    channels = 1
    num_classes = 10
    class_names = [str(digit) for digit in range(10)]

    def __init__(self, root: str = "data/", download: bool = True, image_size: int = 28,
                 batch_size: int = 64, num_workers: int = 0, split: str = "train",
                 drop_last: bool = True, on_device: bool = False):
        super().__init__(root, download, image_size, batch_size, num_workers, split, drop_last,
                         on_device)

    def folders(self) -> list[Path]:
        return [self.root, self.root / self.name / "raw"]

    def find(self, stem: str) -> Path | None:
        for folder in self.folders():
            for path in (folder / stem, folder / f"{stem}.gz"):
                if path.is_file():
                    return path
        return None

    def missing_message(self, advice: str) -> str:
        return (f"{self.name} data files are missing: it needs {', '.join(ALL_FILES)} (each plain or "
                f"gzipped as .gz) in {' or '.join(map(str, self.folders()))}. {advice}{self.hint}")

    def prepare_data(self) -> None:
        if not self.download or all(self.find(stem) for stem in ALL_FILES):
            return
        import torchvision  # only needed to download

        try:  # torchvision's class fetches all four files into root/<name>/raw
            getattr(torchvision.datasets, self.name)(str(self.root), train=True, download=True)
        except Exception as err:  # no network, mirror down, bad checksum...: all fixable by hand
            raise UserError(self.missing_message(
                f"Downloading them (dataset.download=true) failed: {one_line(err)}. Check the "
                "network, or download the files by hand and put them in one of those folders.")) from err

    def load_split(self) -> TensorImages:
        self.prepare_data()  # downloads when allowed and missing (a no-op otherwise)
        image_file, label_file = (self.find(stem) for stem in FILES[self.split])
        if image_file is None or label_file is None:
            raise UserError(self.missing_message(
                "Put the files there by hand, point at a folder that holds them (ganrun train: "
                "dataset.root=...; ganrun eval: data_root=...), or let ganrun train download "
                "them (dataset.download=true)."))
        images = read_idx(image_file, IMAGES_MAGIC)
        labels = read_idx(label_file, LABELS_MAGIC)
        if len(images) != len(labels):
            raise UserError(
                f"{image_file} holds {len(images)} images but {label_file} holds {len(labels)} labels. "
                "Delete both and download them again (dataset.download=true), or reinstall them.")
        return TensorImages(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long(),
                            self.image_size)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST clothes; same format and layout as MNIST."""

    name = "FashionMNIST"
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
    hint = (" On Debian/Ubuntu you can instead run `apt-get install dataset-fashion-mnist` and set "
            "dataset.root=/usr/share/datasets/fashion-mnist.")
