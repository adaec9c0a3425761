"""Every loader and the checkpoint reader, fed truncated and garbage bytes: a UserError that
names the file, never a traceback from deep inside a library or a silently wrong result."""

from pathlib import Path

import pytest
import torch

from conftest import TINY, run_ganrun
from fakedata import write_celeba, write_cifar, write_image_folder, write_mnist
from ganrun.inference.loading import load_model
from ganrun.runner.checkpoints import read_checkpoint
from ganrun.data import CIFAR10, MNIST, CelebA, ImageFolder
from ganrun.errors import UserError


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffthis is not the file you are looking for" * 3)


def load_all(datamodule) -> None:
    datamodule.setup()
    for _ in datamodule.train_dataloader():
        pass


LOADERS = {
    "mnist-images": (write_mnist, "MNIST/raw/train-images-idx3-ubyte.gz",
                     lambda root: MNIST(root=root, download=False, batch_size=2)),
    "mnist-labels": (write_mnist, "MNIST/raw/train-labels-idx1-ubyte.gz",
                     lambda root: MNIST(root=root, download=False, batch_size=2)),
    "cifar10": (write_cifar, "cifar-10-batches-py/data_batch_2",
                lambda root: CIFAR10(root=root, download=False, batch_size=2)),
    "image_folder": (write_image_folder, "dogs/1.png",
                     lambda root: ImageFolder(root=root, batch_size=2, num_workers=0)),
    "celeba": (write_celeba, "celeba/img_align_celeba/000002.jpg",
               lambda root: CelebA(root=root, download=False, batch_size=2, num_workers=0)),
}


@pytest.mark.parametrize("damage", [truncate, garbage])
@pytest.mark.parametrize("name", LOADERS)
def test_loaders_name_the_damaged_file(name, damage, tmp_path):
    write, relative, make = LOADERS[name]
    write(tmp_path)
    damage(tmp_path / relative)
    with pytest.raises(UserError, match=Path(relative).name):
        load_all(make(str(tmp_path)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, ) -> Path:
    tmp = tmp_path_factory.mktemp("ckpt")
    root = tmp / "data"
    write_mnist(root, n_train=16, n_test=4)
    run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={root}", "trainer.max_steps=1",
               f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    return tmp / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("damage", [truncate, garbage, lambda p: p.write_bytes(b"")])
def test_checkpoint_reader_names_the_damaged_file(damage, checkpoint, tmp_path):
    copy = tmp_path / "damaged.ckpt"
    copy.write_bytes(checkpoint.read_bytes())
    damage(copy)
    for reader in (read_checkpoint, load_model):
        with pytest.raises(UserError, match="damaged.ckpt.*cannot be read"):
            reader(copy)


def test_a_torch_file_that_is_not_a_checkpoint(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(UserError, match="weights.pt' is not a ganrun checkpoint"):
        read_checkpoint(other)


def test_a_checkpoint_whose_weights_do_not_fit_its_config(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint, weights_only=True)
    del ckpt["state_dict"]["task.nets.G.net.0.weight"]
    broken = tmp_path / "broken.ckpt"
    torch.save(ckpt, broken)
    with pytest.raises(UserError, match="missing or mismatched: nets.G.net.0.weight"):
        load_model(broken)


def test_a_bad_image_inside_a_loader_worker_gives_one_clean_line(tmp_path):
    write_image_folder(tmp_path / "images", per_class=8)
    garbage(tmp_path / "images" / "cats" / "3.png")
    proc = run_ganrun("train", *TINY, "dataset=image_folder", f"dataset.root={tmp_path / 'images'}",
                      "dataset.image_size=28", "dataset.batch_size=4", "dataset.num_workers=2",
                      "trainer.max_steps=20", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ganrun train: error: ") and "3.png is not a readable image" in last
    assert "Traceback" not in proc.stderr


def test_an_output_folder_that_cannot_be_written(tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_ganrun("train", *TINY, f"hydra.run.dir={tmp_path / 'a_file' / 'run'}",
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "cannot write the output folder" in proc.stderr and "hydra.run.dir" in proc.stderr
    assert "Traceback" not in proc.stderr
