"""Tiny data sets written to temporary folders, in the real on-disk formats."""

import gzip
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from ganrun.data.idx import IMAGES_MAGIC, LABELS_MAGIC


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train=6, n_test=4) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), IMAGES_MAGIC)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10, LABELS_MAGIC)
    return raw


def write_cifar(root: Path, per_batch=4) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        data = np.full((per_batch, 3072), 10 * k, dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [k] * per_batch}, f)
    return folder


def write_png(path: Path, size, color) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def write_celeba(root: Path, n=4) -> Path:
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (178, 218), (40 * i, 0, 0)).save(folder / f"{i:06d}.jpg")
    return folder


def write_image_folder(root: Path, per_class=4) -> Path:
    for k, name in enumerate(("cats", "dogs")):
        for i in range(per_class):
            write_png(root / name / f"{i}.png", (40 + i, 30), (120 * k, 60, 0))
    return root


def write_caption_folder(root: Path, n: int = 24, split_folders: bool = False) -> Path:
    """Images of bright or dark squares and bars with captions that say which, in Hugging
    Face's imagefolder layout (metadata.jsonl with file_name and text)."""
    import json

    shapes = [("bright", "square", (200, 200, 200)), ("dark", "square", (60, 60, 60)),
              ("bright", "bar", (220, 180, 40)), ("dark", "bar", (40, 30, 90))]
    splits = (("train", n), ("test", n // 2)) if split_folders else (("", n),)
    for split, count in splits:
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(count):
            tone, shape, color = shapes[i % 4]
            image = Image.new("RGB", (20 + i % 3, 18), (0, 0, 0))
            box = (4, 4, 16, 14) if shape == "square" else (2, 7, 18, 10)
            image.paste(color, box)
            name = f"img_{i:03d}.png"
            image.save(folder / name)
            text = [f"a {tone} {shape}", f"{shape}, {tone}"] if i % 5 == 0 else f"a {tone} {shape}"
            rows.append({"file_name": name, "text": text})
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
