"""Images with captions, for text-to-image: a user's folder in Hugging Face's ``imagefolder``
layout (``dataset=caption_folder``) and an offline captioned Fashion-MNIST
(``dataset=fashion_captions``).

Batches are dicts: ``image`` (N, C, H, W) in [-1, 1], ``tokens`` (N, L) word indices of one
caption per image (0 pads), ``length`` (N,) the caption lengths, ``label`` (N,) the class (-1:
none) and ``held_out`` (N,) whether the caption's (class, attribute) combination was kept out
of training. The vocabulary is the set of words of the training split's captions (lower case,
letters and digits), in the checkpoint and the export as plain data (``data_shape``).

The caption folder: ``root/metadata.jsonl`` (one JSON object a line) or ``root/metadata.csv``,
each row a ``file_name`` (relative to the folder) and a ``text`` (a caption, or a list of
captions: one item per caption); with ``train/`` and ``test/`` sub-folders, each has its own.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ganrun.data.base import GANDataModule, to_unit_range
from ganrun.data.decode import open_image
from ganrun.data.folder import EXTENSIONS
from ganrun.errors import UserError

PAD, UNKNOWN = "<pad>", "<unk>"
MAX_WORDS = 32


# Letters and digits of any script; a run of CJK characters (written without spaces) is split
# into its characters.
WORD = re.compile(r"[^\W_]+")
CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")


def words(text: str) -> list[str]:
    found = [part for word in WORD.findall(text.lower()) for part in CJK.split(word) if part]
    return found[:MAX_WORDS]


def build_vocabulary(captions: list[str]) -> list[str]:
    """The padding and unknown tokens, then every word of the captions, sorted."""
    return [PAD, UNKNOWN, *sorted({w for caption in captions for w in words(caption)})]


def encode(captions: list[str], vocabulary: list[str],
           length: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(tokens (N, L), lengths (N,), the words not in the vocabulary) of captions."""
    index = {word: i for i, word in enumerate(vocabulary)}
    split = [words(caption) or [UNKNOWN] for caption in captions]
    unknown = sorted({w for ws in split for w in ws if w not in index})
    length = length or max(len(ws) for ws in split)
    tokens = torch.zeros(len(split), length, dtype=torch.long)
    for i, ws in enumerate(split):
        ids = [index.get(w, 1) for w in ws[:length]]
        tokens[i, :len(ids)] = torch.tensor(ids)
    lengths = torch.tensor([min(len(ws), length) for ws in split])
    return tokens, lengths, unknown


class Captioned(Dataset):
    """One item per caption: its image (decoded on demand, or held in memory), its tokens."""

    def __init__(self, images, captions: list[str], image_of: list[int], vocabulary: list[str],
                 image_size: int, mode: str, labels: list[int] | None = None,
                 held_out: list[bool] | None = None, max_length: int = MAX_WORDS):
        self.images, self.captions, self.image_of = images, captions, image_of
        self.image_size, self.mode = image_size, mode
        self.tokens, self.lengths, _ = encode(captions, vocabulary, max_length)
        self.labels = torch.tensor(labels if labels is not None else [-1] * len(captions))
        self.held_out = torch.tensor(held_out if held_out is not None else [False] * len(captions))

    def __len__(self) -> int:
        return len(self.captions)

    def image(self, k: int) -> torch.Tensor:
        source = self.images[k]
        if isinstance(source, torch.Tensor):
            return to_unit_range(source)
        size = self.image_size
        picture = ImageOps.fit(open_image(source, self.mode), (size, size),
                               Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.array(picture)).view(size, size, -1).permute(2, 0, 1)
        return to_unit_range(pixels)

    def __getitems__(self, indices: list[int]) -> dict:
        index = torch.tensor(indices)
        return {"image": torch.stack([self.image(self.image_of[i]) for i in indices]),
                "tokens": self.tokens[index], "length": self.lengths[index],
                "label": self.labels[index], "held_out": self.held_out[index]}


class CaptionedDataModule(GANDataModule):
    """What every captioned data set shares: the vocabulary of its training captions."""

    _vocabulary: list[str] | None = None

    def split_rows(self, split: str) -> Captioned:
        raise NotImplementedError

    @property
    def vocabulary(self) -> list[str]:
        if self._vocabulary is None:
            self._vocabulary = build_vocabulary(self.train_captions())
        return self._vocabulary

    def train_captions(self) -> list[str]:
        raise NotImplementedError

    def shape(self) -> dict:
        return {**super().shape(), "vocabulary": self.vocabulary, "max_length": MAX_WORDS}

    def captions(self, split: str = "test") -> Captioned:
        """A split's items, in the file's order (for metrics and fixed captions)."""
        data = self.with_split(split)
        data.drop_last = False
        data.setup()
        return data.dataset


# ---- A user's folder ------------------------------------------------------------------------

def read_metadata(folder: Path) -> list[tuple[str, list[str]]]:
    """(file name, captions) rows of ``metadata.jsonl`` or ``metadata.csv`` in ``folder``: UTF-8
    (a byte-order mark, as Excel writes, is fine), each ``file_name`` a path inside the
    folder."""
    jsonl, table = folder / "metadata.jsonl", folder / "metadata.csv"
    if not jsonl.is_file() and not table.is_file():
        raise UserError(f"The caption folder {folder} has no metadata.jsonl or metadata.csv. "
                        "Add one, one row per image (or per caption) with `file_name` (the "
                        "image's path in the folder) and `text` (its caption, or a list of "
                        "captions), as Hugging Face's imagefolder layout has it.")
    source = jsonl if jsonl.is_file() else table
    text = _read_text(source)
    rows = []
    if source is jsonl:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as err:
                reason = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deep"
                raise UserError(f"{jsonl}, line {number}, is not JSON ({reason}). Fix that "
                                "line: one JSON object per line.") from None
            rows.append((number, row))
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            rows = [(number, row) for number, row in enumerate(reader, 2)]
        except csv.Error as err:
            raise UserError(f"{table}, line {reader.line_num}, cannot be read as CSV ({err}). "
                            "Fix that line (a caption longer than 100,000 characters is not a "
                            "caption).") from None
    found = []
    for number, row in rows:
        if not isinstance(row, dict) or not row.get("file_name"):
            raise UserError(f"{source}, line {number}, has no `file_name`. Every row names "
                            "its image with `file_name` and its caption with `text`.")
        name = str(row["file_name"])
        text = row.get("text")
        captions = text if isinstance(text, list) else [text]
        if not captions or any(not isinstance(c, str) or not words(c) for c in captions):
            raise UserError(f"{source}, line {number} ({name[:80]}), has an empty or missing "
                            "caption (`text`). Give every image at least one caption with words "
                            "in it, or remove the row.")
        check_inside(folder, name, f"{source}, line {number}")
        found.append((name, captions))
    return found


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror or err}). Check its "
                        "permissions.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise UserError(f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}, "
                        "e.g. a file saved as Latin-1). Save it as UTF-8 and run again.") from None


def check_inside(folder: Path, name: str, where: str) -> None:
    """A ``file_name`` must name a file inside the caption folder: an absolute path, ``..`` or a
    link leading out of it is refused (metadata is data; it never makes ganrun read elsewhere)."""
    path = folder / name
    inside = folder.resolve()
    target = path.resolve()
    if Path(name).is_absolute() or (target != inside and inside not in target.parents):
        raise UserError(f"{where} names the image {name[:120]!r}, which lies outside the caption "
                        f"folder {folder} (an absolute path, '..', or a link out of the folder). "
                        "Every file_name is a path inside the folder: move the image into it.")


class CaptionFolder(CaptionedDataModule):
    """Images and captions in ``root`` (both splits), or in ``root/train`` and ``root/test``."""

    num_classes = 0

    def __init__(self, root: str = "data/", download: bool = False, image_size: int = 64,
                 batch_size: int = 64, num_workers: int = 0, split: str = "train",
                 drop_last: bool = True, channels: int = 3):
        super().__init__(root, download, image_size, batch_size, num_workers, split, drop_last)
        if channels not in (1, 3):
            raise UserError(f"dataset.channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")
        self.channels = channels

    def folder(self, split: str) -> Path:
        sub = self.root / split
        if split == "test" and not sub.is_dir() and (self.root / "validation").is_dir():
            sub = self.root / "validation"
        return sub if sub.is_dir() else self.root

    def rows(self, split: str) -> tuple[Path, list[tuple[str, list[str]]]]:
        folder = self.folder(split)
        if not self.root.is_dir():
            raise UserError(f"The caption folder {self.root} does not exist. Set dataset.root "
                            "to a folder of images with a metadata.jsonl or metadata.csv.")
        rows = read_metadata(folder)
        named = {name for name, _ in rows}
        missing = [name for name in named if not (folder / name).is_file()]
        if missing:
            raise UserError(f"{folder}: the metadata names {len(missing)} image(s) that are not "
                            f"there, e.g. {missing[0]}. Add the files or remove their rows.")
        images = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.suffix.lower() in EXTENSIONS and p.is_file()}
        uncaptioned = sorted(images - named)
        if uncaptioned:
            raise UserError(f"{folder}: {len(uncaptioned)} image(s) have no caption in the "
                            f"metadata, e.g. {uncaptioned[0]}. Caption them, or move them out "
                            "of the folder.")
        return folder, rows

    def train_captions(self) -> list[str]:
        return [c for _, captions in self.rows("train")[1] for c in captions]

    def load_split(self) -> Captioned:
        folder, rows = self.rows(self.split)
        paths, captions, image_of = [], [], []
        for name, texts in rows:
            paths.append(folder / name)
            for text in texts:
                captions.append(text)
                image_of.append(len(paths) - 1)
        return Captioned(paths, captions, image_of, self.vocabulary, self.image_size,
                         "RGB" if self.channels == 3 else "L")


# ---- Fashion-MNIST with captions -------------------------------------------------------------

ATTRIBUTES = {"tone": ("light", "dark"), "size": ("small", "large"),
              "pattern": ("plain", "patterned")}
SYNONYMS = {"light": ("light", "pale", "bright"), "dark": ("dark", "deep", "dim"),
            "small": ("small", "little", "compact"), "large": ("large", "big", "wide"),
            "plain": ("plain", "smooth", "simple"), "patterned": ("patterned", "textured", "busy")}
NOUNS = ("t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
         "bag", "ankle boot")
TEMPLATES = ("a {tone} {size} {pattern} {noun}", "a {size} {noun}, {tone} and {pattern}",
             "{pattern} {noun} in {tone} tones, {size}", "photo of a {tone} {noun} that is "
             "{size} and {pattern}", "the {noun}: {size}, {pattern}, {tone}")
# (class, attribute value) pairs whose captions are kept out of training: the test split
# measures whether the model composes them anyway.
HELD_OUT = ((5, "dark"), (1, "patterned"), (8, "small"))


def raw_attributes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image (uint8 (N, 1, H, W), or floats in [-1, 1]): the mean brightness of the
    garment's pixels (tone), the garment's share of the image (size) and the mean absolute
    Laplacian inside the garment (pattern). In parts of 256 images, whose temporaries stay in
    the CPU's cache: 3x faster on the 60,000 training images than all at once."""
    parts = [raw_attributes_of(part) for part in images.split(256)]
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


def raw_attributes_of(images: torch.Tensor) -> dict[str, torch.Tensor]:
    x = images.float().div(255) if images.dtype == torch.uint8 else images.float().add(1).div(2)
    x = x.clamp(0, 1).mean(1)  # (N, H, W), 0: the black background
    garment = x > 0.1
    lap = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2]
           - x[:, 1:-1, 2:]).abs()
    inner = garment[:, 1:-1, 1:-1]
    return {"tone": (x * garment).sum((1, 2)) / garment.sum((1, 2)).clamp(min=1),
            "size": garment.float().mean((1, 2)),
            "pattern": (lap * inner).sum((1, 2)) / inner.sum((1, 2)).clamp(min=1)}


def attribute_thresholds(images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per class, the training split's median of each raw attribute: within a class, half the
    garments are dark and half light, and so on ("a dark sandal" is dark for a sandal)."""
    raw = raw_attributes(images)
    return {name: torch.stack([values[labels == k].median() for k in range(len(NOUNS))])
            for name, values in raw.items()}


def measure_attributes(images: torch.Tensor, labels: torch.Tensor,
                       thresholds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """0/1 per image for each attribute, against its class's thresholds: tone 1 = dark,
    size 1 = large, pattern 1 = patterned. The same function writes the captions and judges
    generated images."""
    raw = raw_attributes(images)
    labels = labels.long().cpu()
    return {"tone": (raw["tone"].cpu() < thresholds["tone"][labels]).long(),
            "size": (raw["size"].cpu() > thresholds["size"][labels]).long(),
            "pattern": (raw["pattern"].cpu() > thresholds["pattern"][labels]).long()}


def caption(label: int, values: dict[str, int], rng: random.Random) -> str:
    words_of = {name: rng.choice(SYNONYMS[ATTRIBUTES[name][value]])
                for name, value in values.items()}
    return rng.choice(TEMPLATES).format(noun=NOUNS[label], **words_of)


class FashionCaptions(CaptionedDataModule):
    """Fashion-MNIST, each image captioned with its class and three attributes measured from
    its pixels (``measure_attributes``: dark or light, small or large, plain or patterned),
    in varied wording (templates and synonyms, drawn from a seed per image). The (class,
    attribute) pairs of ``HELD_OUT`` (dark sandals, patterned trousers, small bags) appear in
    the test split only."""

    channels = 1
    num_classes = 10

    def __init__(self, root: str = "data/", download: bool = True, image_size: int = 28,
                 batch_size: int = 64, num_workers: int = 0, split: str = "train",
                 drop_last: bool = True, hold_out: bool = True):
        super().__init__(root, download, image_size, batch_size, num_workers, split, drop_last)
        from ganrun.data.mnist import FashionMNIST

        self.class_names = FashionMNIST.class_names
        self.hold_out = bool(hold_out)
        self._source = FashionMNIST

    def source(self, split: str):
        data = self._source(str(self.root), self.download, 28, self.batch_size, 0, split)
        data.prepare_data()
        return data.load_split()

    def thresholds(self) -> dict[str, torch.Tensor]:
        if getattr(self, "_thresholds", None) is None:
            train = self.source("train")
            self._thresholds = attribute_thresholds(train.images, train.labels)
        return self._thresholds

    def rows(self, split: str):
        """(images uint8, labels, captions, held-out flags, attribute values) of a split,
        without the held-out combinations in training (made once per split)."""
        made = self.__dict__.setdefault("_rows", {})
        if split not in made:
            made[split] = self.make_rows(split)
        return made[split]

    def make_rows(self, split: str):
        source = self.source(split)
        values = measure_attributes(source.images, source.labels, self.thresholds())
        rng = random.Random(f"fashion_captions/{split}")
        captions, keep, held = [], [], []
        for i, label in enumerate(source.labels.tolist()):
            attrs = {name: int(values[name][i]) for name in ATTRIBUTES}
            named = {ATTRIBUTES[name][v] for name, v in attrs.items()}
            out = self.hold_out and any(label == k and a in named for k, a in HELD_OUT)
            if split == "train" and out:
                continue
            keep.append(i)
            held.append(out)
            captions.append(caption(label, attrs, rng))
        index = torch.tensor(keep)
        return (source.images[index], source.labels[index].tolist(), captions, held,
                {name: v[index] for name, v in values.items()})

    def train_captions(self) -> list[str]:
        return self.rows("train")[2]

    def load_split(self) -> Captioned:
        images, labels, captions, held, _ = self.rows(self.split)
        if self.image_size != 28:
            images = torch.nn.functional.interpolate(
                images.float(), (self.image_size,) * 2, mode="bilinear", antialias=True,
                align_corners=False).round().clamp(0, 255).to(torch.uint8)
        return Captioned(list(images), captions, list(range(len(captions))), self.vocabulary,
                         self.image_size, "L", labels, held)


def grid_with_captions(images: torch.Tensor, captions: list[str], nrow: int) -> torch.Tensor:
    """One picture: each row of ``nrow`` images (in [-1, 1]) after its caption, written out."""
    from PIL import ImageDraw
    from torchvision.utils import make_grid

    rows = math.ceil(len(images) / nrow)
    scale = max(1, 64 // images.shape[-1])
    grid = make_grid(images.float().cpu().clamp(-1, 1).add(1).div(2), nrow=nrow, padding=2)
    grid = torch.nn.functional.interpolate(grid[None], scale_factor=scale, mode="nearest")[0]
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    height, width = grid.shape[1:]
    text_width = 360
    canvas = Image.new("RGB", (text_width + width, height), "white")
    canvas.paste(Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)),
                 (text_width, 0))
    draw = ImageDraw.Draw(canvas)
    row_height = height / rows
    for r in range(rows):
        text = captions[r * nrow] if r * nrow < len(captions) else ""
        draw.text((4, r * row_height + row_height / 2 - 6), text[:58], fill="black")
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1).float().div(255).mul(2).sub(1)
