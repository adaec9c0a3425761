"""Tests of ganrun.data on the real Fashion-MNIST (when installed) and tiny self-written files."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning import seed_everything

from ganrun.data import CIFAR10, MNIST, CelebA, FashionMNIST, ImageFolder, TensorImages
from ganrun.data.base import to_unit_range
from fakedata import write_cifar, write_mnist, write_png
from conftest import unavailable
from ganrun.errors import UserError

FASHION = Path("/usr/share/datasets/fashion-mnist")


def first_batch(dm):
    dm.prepare_data()
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def check_batch(images, labels, batch, channels, size):
    assert images.shape == (batch, channels, size, size) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert labels.shape == (batch,) and labels.dtype == torch.int64


# --- real Fashion-MNIST --------------------------------------------------------------------------

@pytest.fixture
def fashion():
    if not FASHION.is_dir():
        unavailable(f"{FASHION} absent (apt-get install dataset-fashion-mnist)")
    return FASHION


def test_fashion_mnist_real(fashion):
    dm = FashionMNIST(root=str(fashion), download=False, batch_size=16)
    assert (dm.channels, dm.image_size, dm.num_classes) == (1, 28, 10)
    images, labels = first_batch(dm)
    check_batch(images, labels, 16, 1, 28)
    assert labels.min() >= 0 and labels.max() <= 9
    assert len(dm.dataset) == 60000


def test_fashion_mnist_real_test_split_resized(fashion):
    dm = FashionMNIST(root=str(fashion), download=False, batch_size=16, split="test", image_size=32)
    images, labels = first_batch(dm)
    check_batch(images, labels, 16, 1, 32)
    assert len(dm.dataset) == 10000


# --- MNIST from tiny IDX files -------------------------------------------------------------------

def test_mnist_tiny_torchvision_layout(tmp_path):
    write_mnist(tmp_path)
    dm = MNIST(root=str(tmp_path), download=False, batch_size=4)
    images, labels = first_batch(dm)
    check_batch(images, labels, 4, 1, 28)
    test = MNIST(root=str(tmp_path), download=False, split="test", batch_size=4)
    test.setup()
    assert len(dm.dataset) == 6 and len(test.dataset) == 4
    assert test.dataset.labels.tolist() == [0, 1, 2, 3]


def test_mnist_truncated_file(tmp_path):
    raw = write_mnist(tmp_path)
    path = raw / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz"):
        MNIST(root=str(tmp_path), download=False, batch_size=2).setup()


# Explicit ids and mtime=0: a gzip header holds the time it was written, and an id made from it
# differs between pytest-xdist workers that collect in different seconds.
@pytest.mark.parametrize("garbage", [b"not a gzip stream at all",
                                     gzip.compress(b"\x00\x00\x09\x03garbage", mtime=0)],
                         ids=["not_gzip", "gzip_of_garbage"])
def test_mnist_garbage_file(tmp_path, garbage):
    raw = write_mnist(tmp_path)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(garbage)
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz"):
        MNIST(root=str(tmp_path), download=False, batch_size=2).setup()


def test_mnist_missing(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(UserError) as err:
        FashionMNIST(root=str(root), download=False).setup()
    message = str(err.value)
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", str(root / "FashionMNIST" / "raw"),
                 "dataset.download", "dataset-fashion-mnist"):
        assert name in message


@pytest.mark.parametrize("option", [{"batch_size": 0}, {"image_size": 0}, {"num_workers": -1},
                                    {"split": "valid"}])
def test_bad_options(option):
    with pytest.raises(UserError, match=next(iter(option))):
        MNIST(**option)


def test_fast_path_is_used(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    dm = MNIST(root=str(tmp_path), download=False, batch_size=3)
    dm.setup()

    def per_image(self, index):
        raise AssertionError("DataLoader fell back to __getitem__")

    monkeypatch.setattr(TensorImages, "__getitem__", per_image)
    for images, labels in dm.train_dataloader():
        # Labels are 0..5, one per image, so they say which stored images the batch holds.
        assert torch.equal(images, to_unit_range(dm.dataset.images[labels]))


def test_same_seed_same_order(tmp_path):
    write_mnist(tmp_path, n_train=10)
    dm = MNIST(root=str(tmp_path), download=False, batch_size=5)
    dm.setup()
    orders = []
    for _ in range(2):
        seed_everything(123)
        orders.append(torch.cat([labels for _, labels in dm.train_dataloader()]).tolist())
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(10))


# --- CIFAR-10 from tiny pickles ------------------------------------------------------------------

def test_cifar10_tiny(tmp_path):
    write_cifar(tmp_path)
    dm = CIFAR10(root=str(tmp_path), download=False, batch_size=4)
    assert (dm.channels, dm.image_size, dm.num_classes) == (3, 32, 10)
    images, labels = first_batch(dm)
    check_batch(images, labels, 4, 3, 32)
    assert len(dm.dataset) == 20 and sorted(dm.dataset.labels.unique().tolist()) == [0, 1, 2, 3, 4]
    # Each batch file was filled with 10 * its index, so pixels and labels must agree.
    assert torch.equal(images, (labels.float() * 10 / 127.5 - 1).view(-1, 1, 1, 1).expand_as(images))
    test = CIFAR10(root=str(tmp_path), download=False, split="test", batch_size=2, image_size=16)
    images, labels = first_batch(test)
    check_batch(images, labels, 2, 3, 16)
    assert labels.tolist() == [5, 5]


def test_cifar10_corrupt(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match="data_batch_3"):
        CIFAR10(root=str(tmp_path), download=False, batch_size=4).setup()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(UserError, match="test_batch"):
        CIFAR10(root=str(tmp_path), download=False, split="test", batch_size=1).setup()


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_cifar10_pickle_that_runs_code_is_refused(tmp_path):
    folder = write_cifar(tmp_path)
    marker = tmp_path / "code-ran"
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": RunsCode(marker), b"labels": [0]}, f)
    with pytest.raises(UserError, match="data_batch_1.*pathlib.*could run code"):
        CIFAR10(root=str(tmp_path), download=False, batch_size=4).setup()
    assert not marker.exists()


def test_cifar10_missing(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py") as err:
        CIFAR10(root=str(tmp_path), download=False).setup()
    assert "data_batch_1" in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)


# --- ImageFolder and CelebA ----------------------------------------------------------------------

def test_image_folder_classes(tmp_path):
    write_png(tmp_path / "cats" / "a.png", (40, 30), (255, 0, 0))
    write_png(tmp_path / "cats" / "deep" / "b.PNG", (20, 50), (255, 0, 0))
    write_png(tmp_path / "dogs" / "c.jpg", (64, 64), (0, 0, 255))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    dm = ImageFolder(root=str(tmp_path), image_size=24, batch_size=3, num_workers=0)
    assert dm.num_classes == 2 and dm.channels == 3
    images, labels = first_batch(dm)
    check_batch(images, labels, 3, 3, 24)
    red = images[:, 0].mean(dim=(1, 2)) > 0  # cats are red, dogs blue
    assert torch.equal(red, labels == 0)
    gray = ImageFolder(root=str(tmp_path), image_size=8, batch_size=3, num_workers=0, channels=1)
    check_batch(*first_batch(gray), 3, 1, 8)


def test_image_folder_flat_and_errors(tmp_path):
    write_png(tmp_path / "x.png", (10, 12), (1, 2, 3))
    write_png(tmp_path / "y.bmp", (12, 10), (1, 2, 3))
    dm = ImageFolder(root=str(tmp_path), image_size=8, batch_size=2, num_workers=0)
    assert dm.num_classes == 0
    images, labels = first_batch(dm)
    check_batch(images, labels, 2, 3, 8)
    assert labels.tolist() == [0, 0]
    (tmp_path / "z.png").write_bytes(b"definitely not a png")
    bad = ImageFolder(root=str(tmp_path), image_size=8, batch_size=3, num_workers=0)
    with pytest.raises(UserError, match="z.png"):
        first_batch(bad)


def test_image_folder_empty_or_missing(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(UserError, match=r"No images found.*\.jpeg"):
        ImageFolder(root=str(tmp_path / "empty"), num_workers=0).setup()
    with pytest.raises(UserError, match="dataset.root") as err:
        ImageFolder(root=str(tmp_path / "missing")).setup()
    assert str(tmp_path / "missing") in str(err.value)
    with pytest.raises(UserError, match="channels"):
        ImageFolder(root=str(tmp_path), channels=2)


def test_celeba_tiny(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (178, 218), (50 * i, 0, 0)).save(folder / f"{i:06d}.jpg")
    dm = CelebA(root=str(tmp_path), download=False, batch_size=2, num_workers=0)
    assert (dm.channels, dm.image_size, dm.num_classes) == (3, 64, 0)
    check_batch(*first_batch(dm), 2, 3, 64)
    with pytest.raises(UserError, match="img_align_celeba"):
        CelebA(root=str(tmp_path / "none"), download=False).setup()
