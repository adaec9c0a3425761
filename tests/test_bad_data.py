"""Bad inputs, data: missing, damaged, empty or unusual data sets and image files (see
tests/badinput.py for what each case asserts)."""

import gzip
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from badinput import box, case, cases, run_case, shared  # noqa: F401 (fixtures)
from fakedata import write_image_folder, write_png

KIND = "data"
TINY = ["debug=tiny", "trainer.max_steps=2", "hydra.run.dir=../runs/r"]


def mnist_copy(box, shared):
    root = box.src / "data"
    shutil.copytree(shared.mnist, root)
    return root, root / "MNIST" / "raw"


def train_mnist(root):
    return ["train", *TINY, "dataset=mnist", f"dataset.root={root}", "dataset.download=false",
            "dataset.batch_size=8"]


def train_folder(root, *extra):
    return ["train", *TINY, "dataset=image_folder", f"dataset.root={root}",
            "dataset.image_size=8", "dataset.batch_size=2", "dataset.num_workers=0", *extra]


@case(KIND, "mnist_missing", message=["MNIST data files are missing", "train-images-idx3-ubyte"])
def _(box, shared):
    return train_mnist(box.src / "nothing_here")


@case(KIND, "mnist_truncated_gzip", message="train-images-idx3-ubyte")
def _(box, shared):
    root, raw = mnist_copy(box, shared)
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-50], mtime=0))
    return train_mnist(root)


@case(KIND, "mnist_garbage_labels", message="train-labels-idx1-ubyte")
def _(box, shared):
    root, raw = mnist_copy(box, shared)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not a gzip stream")
    return train_mnist(root)


@case(KIND, "mnist_images_and_labels_disagree", message="labels")
def _(box, shared):
    from fakedata import write_idx
    from ganrun.data.idx import LABELS_MAGIC

    root, raw = mnist_copy(box, shared)
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.arange(10) % 10, LABELS_MAGIC)
    return train_mnist(root)


@case(KIND, "image_folder_missing", message="does not exist")
def _(box, shared):
    return train_folder(box.src / "no_images")


@case(KIND, "image_folder_empty", message="No images found")
def _(box, shared):
    (box.src / "empty").mkdir()
    return train_folder(box.src / "empty")


@case(KIND, "image_folder_is_a_file", message="does not exist")
def _(box, shared):
    (box.src / "a_file").write_text("x")
    return train_folder(box.src / "a_file")


@case(KIND, "image_folder_damaged_image", message=["broken.png", "not a readable image"])
def _(box, shared):
    root = box.src / "images"
    write_png(root / "good.png", (8, 8), (0, 0, 0))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return train_folder(root)  # batches of 2: the first one holds it


@case(KIND, "image_folder_text_named_png", message=["notes.png", "not a readable image"])
def _(box, shared):
    root = box.src / "images"
    write_png(root / "good.png", (8, 8), (0, 0, 0))
    (root / "notes.png").write_text("hello")
    return train_folder(root)


@case(KIND, "zero_byte_images_are_not_counted",
      message=["has only 3 images", "Skipped 2 empty (0-byte) image file(s)"])
def _(box, shared):
    root = box.src / "images"
    for i in range(3):
        write_png(root / f"{i}.png", (8, 8), (10 * i, 0, 0))
    for i in range(2):
        (root / f"empty{i}.png").write_bytes(b"")
    return train_folder(root, "dataset.batch_size=4")


@case(KIND, "fewer_images_than_a_batch", message=["fewer than dataset.batch_size=64",
                                                  "Lower dataset.batch_size"])
def _(box, shared):
    return train_folder(write_image_folder(box.src / "images"), "dataset.batch_size=64")


@case(KIND, "bad_channels_option", message="dataset.channels must be 1")
def _(box, shared):
    return train_folder(write_image_folder(box.src / "images"), "dataset.channels=4")


def sixteen_bit_is_scaled(box, result, shared):
    from ganrun.data.folder import ImageFolder

    data = ImageFolder(root=str(box.src / "gray16"), image_size=4, batch_size=1, channels=1,
                       num_workers=0)
    data.setup()
    image, _ = data.dataset[0]
    assert abs(float(image.mean())) < 0.01, float(image.mean())  # mid-gray, not white (+1)


@case(KIND, "sixteen_bit_png", code=0, check=sixteen_bit_is_scaled)
def _(box, shared):
    root = box.src / "gray16"
    root.mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(root / f"{i}.png")
    return train_folder(root, "dataset.channels=1")


def transparent_is_white(box, result, shared):
    from ganrun.data.folder import ImageFolder

    data = ImageFolder(root=str(box.src / "rgba"), image_size=4, batch_size=1, num_workers=0)
    data.setup()
    image, _ = data.dataset[0]
    assert torch.allclose(image, torch.ones_like(image)), image  # fully transparent -> white


@case(KIND, "transparent_png", code=0, message="composited onto a white background",
      check=transparent_is_white)
def _(box, shared):
    root = box.src / "rgba"
    root.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((8, 8, 4), dtype=np.uint8), "RGBA").save(root / f"{i}.png")
    return train_folder(root)


@case(KIND, "cifar_batch_pickling_code", message="data_batch_1")
def _(box, shared):
    folder = box.src / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    class Payload:
        def __reduce__(self):
            return shutil.rmtree, (str(box.canary),)

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}))
    return ["train", *TINY, "dataset=cifar10", f"dataset.root={box.src / 'cifar'}",
            "dataset.download=false", "dataset.batch_size=2"]


@case(KIND, "unpaired_folder_without_trainB", message="trainB")
def _(box, shared):
    root = box.src / "horse2zebra"
    for folder in ("trainA", "testA", "testB"):
        write_png(root / folder / "0.png", (12, 12), (0, 0, 0))
    return ["train", "experiment=cyclegan_256", "hardware=cpu", f"dataset.root={root}",
            "dataset.load_size=14", "dataset.crop_size=12", "hydra.run.dir=../runs/r"]


@case(KIND, "paired_folder_odd_width", message="width must be even")
def _(box, shared):
    root = box.src / "facades"
    for split in ("train", "test"):
        write_png(root / split / "0.png", (15, 8), (0, 0, 0))
    return ["train", "experiment=pix2pix_facades", "hardware=cpu", f"dataset.root={root}",
            "dataset.load_size=8", "dataset.crop_size=8", "hydra.run.dir=../runs/r"]


@case(KIND, "translate_input_damaged", message=["bad.png", "not a readable image"])
def _(box, shared):
    write_png(box.src / "in" / "good.png", (16, 16), (0, 0, 0))
    (box.src / "in" / "bad.png").write_bytes(b"\x89PNG garbage")
    return ["translate", f"ckpt={shared.cycle_ckpt}", f"in={box.src / 'in'}", "out=../out/t"]


@case(KIND, "translate_input_empty", message="no images")
def _(box, shared):
    (box.src / "in").mkdir()
    return ["translate", f"ckpt={shared.cycle_ckpt}", f"in={box.src / 'in'}", "out=../out/t"]


@case(KIND, "translate_input_missing", message="does not exist")
def _(box, shared):
    return ["translate", f"ckpt={shared.cycle_ckpt}", f"in={box.src / 'nowhere'}",
            "out=../out/t"]


@case(KIND, "translate_mask_missing", message="no mask for")
def _(box, shared):
    write_png(box.src / "in" / "a.png", (28, 28), (0, 0, 0))
    (box.src / "masks").mkdir()
    return ["translate", f"ckpt={shared.inpaint_ckpt}", f"in={box.src / 'in'}",
            f"mask={box.src / 'masks'}", "out=../out/t"]


@case(KIND, "eval_real_folder_missing", message="does not exist")
def _(box, shared):
    write_png(box.src / "fake" / "0.png", (8, 8), (0, 0, 0))
    return ["eval", f"real={box.src / 'real'}", f"fake={box.src / 'fake'}"]


@case(KIND, "eval_fake_folder_empty", message="holds no images")
def _(box, shared):
    write_png(box.src / "real" / "0.png", (8, 8), (0, 0, 0))
    (box.src / "fake").mkdir()
    return ["eval", f"real={box.src / 'real'}", f"fake={box.src / 'fake'}"]


@case(KIND, "eval_statistics_not_npz", message="not a readable .npz file")
def _(box, shared):
    (box.src / "stats.npz").write_bytes(b"garbage")
    write_png(box.src / "fake" / "0.png", (8, 8), (0, 0, 0))
    return ["eval", f"real={box.src / 'stats.npz'}", f"fake={box.src / 'fake'}"]


@case(KIND, "eval_statistics_with_a_pickle", message="not a readable .npz file")
def _(box, shared):
    np.savez(box.src / "stats.npz", mu=np.array([object()], dtype=object), sigma=np.eye(2))
    write_png(box.src / "fake" / "0.png", (8, 8), (0, 0, 0))
    return ["eval", f"real={box.src / 'stats.npz'}", f"fake={box.src / 'fake'}"]


@case(KIND, "eval_statistics_wrong_arrays", message="need `mu`")
def _(box, shared):
    np.savez(box.src / "stats.npz", mean=np.zeros(3))
    write_png(box.src / "fake" / "0.png", (8, 8), (0, 0, 0))
    return ["eval", f"real={box.src / 'stats.npz'}", f"fake={box.src / 'fake'}"]


def captions_train(root):
    return ["train", *TINY, "task=text2image", "model=text2image", "dataset=caption_folder",
            f"dataset.root={root}", "dataset.image_size=16", "dataset.batch_size=2",
            "task.encoder_batches=1"]


def caption_folder(box):
    from fakedata import write_caption_folder

    return write_caption_folder(box.src / "captions", n=8)


@case(KIND, "caption_folder_without_metadata", message=["has no metadata.jsonl or metadata.csv",
                                                        "file_name"])
def _(box, shared):
    root = caption_folder(box)
    (root / "metadata.jsonl").unlink()
    return captions_train(root)


@case(KIND, "caption_row_naming_a_missing_image", message=["not there", "gone.png"])
def _(box, shared):
    root = caption_folder(box)
    with (root / "metadata.jsonl").open("a") as f:
        f.write('{"file_name": "gone.png", "text": "a dark square"}\n')
    return captions_train(root)


@case(KIND, "image_without_a_caption", message=["have no caption", "stray.png"])
def _(box, shared):
    root = caption_folder(box)
    write_png(root / "stray.png", (8, 8), (0, 0, 0))
    return captions_train(root)


def metadata_line(box, index: int, text: str):
    """A caption folder whose metadata.jsonl has line ``index`` replaced by ``text``."""
    root = caption_folder(box)
    lines = (root / "metadata.jsonl").read_text().splitlines()
    lines[index] = text
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


@case(KIND, "empty_caption", message=["empty or missing caption", "img_000.png"])
def _(box, shared):
    return captions_train(metadata_line(box, 0, '{"file_name": "img_000.png", "text": "  "}'))


@case(KIND, "caption_metadata_not_json", message=["line 2, is not JSON"])
def _(box, shared):
    return captions_train(metadata_line(box, 1, "{not json"))


@case(KIND, "text2image_on_images_without_captions", message="needs images with captions")
def _(box, shared):
    return ["train", *TINY, "task=text2image", "model=text2image", "dataset=mnist",
            f"dataset.root={shared.mnist}"]


@pytest.mark.parametrize("c", cases(KIND))
def test_bad_data(c, box, shared):
    run_case(c, box, shared)
