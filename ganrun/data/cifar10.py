"""CIFAR-10: 32x32 colour, 10 classes, held in memory, read from torchvision's extracted pickles."""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np
import torch

from ganrun.data.base import GANDataModule, TensorImages, one_line
from ganrun.errors import UserError

FOLDER = "cifar-10-batches-py"
FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _numpy_core():
    try:
        from numpy import _core as core  # numpy >= 2
    except ImportError:  # numpy 1
        from numpy import core
    return core


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays only: a CIFAR-10 batch file is data, and a
    tampered one must not run code (plain ``pickle.load`` would call anything it names). The
    allowlist covers the original Python 2 files and numpy 1 and 2 pickles of protocols 2-5."""

    def find_class(self, module: str, name: str):
        core = _numpy_core()
        allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                   ("_codecs", "encode"): codecs.encode}
        for prefix in ("numpy.core", "numpy._core"):
            allowed[(f"{prefix}.multiarray", "_reconstruct")] = core.multiarray._reconstruct
            allowed[(f"{prefix}.numeric", "_frombuffer")] = core.numeric._frombuffer
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch file "
                                         "does not hold (refused: it could run code)")
        return allowed[(module, name)]


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one pickled CIFAR-10 batch."""
    try:
        with open(path, "rb") as f:
            batch = ArrayUnpickler(f, encoding="bytes").load()
        data, labels = batch[b"data"], np.asarray(batch[b"labels"], dtype=np.int64)
        ok = (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
              and data.shape[1] == 3 * 32 * 32 and labels.shape == (len(data),))
    except Exception as err:  # unpickling garbage can fail in almost any way
        raise UserError(f"The CIFAR-10 file {path} is damaged ({one_line(err)}). Delete the folder "
                        f"{path.parent} and download it again (dataset.download=true).") from err
    if not ok:
        raise UserError(f"The CIFAR-10 file {path} does not hold a b'data' array of N x 3072 uint8 "
                        f"and N b'labels'. Delete the folder {path.parent} and download it again "
                        "(dataset.download=true).")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10(GANDataModule):
    """CIFAR-10 from ``root/cifar-10-batches-py/`` (data_batch_1..5 for train, test_batch for test)."""

    channels = 3
    num_classes = 10
    class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

    def __init__(self, root: str = "data/", download: bool = True, image_size: int = 32,
                 batch_size: int = 64, num_workers: int = 0, split: str = "train",
                 drop_last: bool = True, on_device: bool = False):
        super().__init__(root, download, image_size, batch_size, num_workers, split, drop_last,
                         on_device)
        self.folder = self.root / FOLDER

    def missing(self, names: list[str]) -> list[str]:
        return [name for name in names if not (self.folder / name).is_file()]

    def missing_message(self, missing: list[str], advice: str) -> str:
        return (f"CIFAR-10 data is missing: {self.folder} lacks {', '.join(missing)}. {advice} "
                f"By hand: download {URL} and extract it in {self.root} so that {self.folder}/ "
                "holds data_batch_1 ... data_batch_5 and test_batch.")

    def prepare_data(self) -> None:
        missing = self.missing(FILES["train"] + FILES["test"])
        if not self.download or not missing:
            return
        from torchvision.datasets import CIFAR10 as Tv
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(Tv.url, str(self.root), filename=Tv.filename, md5=Tv.tgz_md5)
        except Exception as err:  # no network, bad checksum...: all fixable by hand
            raise UserError(self.missing_message(
                missing, f"Downloading it (dataset.download=true) failed: {one_line(err)}.")) from err

    def load_split(self) -> TensorImages:
        self.prepare_data()  # downloads when allowed and missing (a no-op otherwise)
        if missing := self.missing(FILES[self.split]):
            raise UserError(self.missing_message(missing, (
                "Point at a folder that holds it (ganrun train: dataset.root=...; ganrun eval: "
                "data_root=...), or let ganrun train download it (dataset.download=true).")))
        images, labels = zip(*(read_batch(self.folder / name) for name in FILES[self.split]))
        return TensorImages(torch.from_numpy(np.concatenate(images)),
                            torch.from_numpy(np.concatenate(labels)), self.image_size)
