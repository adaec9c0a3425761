"""Writing generated samples to disk: PNG files, one .npz, or one grid image.

Every file is written under a temporary name and renamed into place, so an interrupted run
never leaves a half-written file under a final name.
"""

import csv
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from ganrun.errors import UserError
from ganrun.files import write_bytes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Samples in [-1, 1] -> uint8 pixels (N, C, H, W), rounded as pixels were scaled on load."""
    return images.float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def prepare_folder(folder: Path, names: list[str], overwrite: bool) -> None:
    """Creates ``folder`` and checks that it is writable and that none of ``names`` exists
    (unless ``overwrite``), before any sample is generated."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".ganrun-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise UserError(f"Cannot write to the output folder '{folder}' ({err.strerror or err}). "
                        "Choose a folder you can write to with out=<dir>.") from None
    existing = [name for name in names if (folder / name).exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise UserError(f"The output folder '{folder}' already holds {shown}, which this command "
                        "would replace. Choose another folder with out=<dir>, or add "
                        "overwrite=true to replace them.")


def _atomic_write(path: Path, data: bytes) -> None:
    # Never through a link an output folder holds (the folder may be shared): ganrun.files.
    write_bytes(path, data)


def png_bytes(pixels: torch.Tensor) -> bytes:
    """One uint8 image (C, H, W) with 1 or 3 channels as PNG bytes."""
    array = pixels.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def check_png_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise UserError(f"The model makes {channels}-channel samples, which PNG cannot hold "
                        "(it needs 1 or 3 channels; toy point data sets have 2). Use "
                        "format=npz instead.")


def write_png(path: Path, pixels: torch.Tensor) -> None:
    _atomic_write(path, png_bytes(pixels))


def write_image(path: Path, pixels: torch.Tensor) -> None:
    """uint8 pixels (C, H, W) in the format the file name's extension says (PNG, JPEG, ...)."""
    if path.suffix.lower() == ".png":
        return write_png(path, pixels)
    import io

    from PIL import Image

    array = pixels.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    buffer = io.BytesIO()
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    image.save(buffer, format=Image.registered_extensions()[path.suffix.lower()], **options)
    _atomic_write(path, buffer.getvalue())


def write_grid(path: Path, pixels: torch.Tensor, nrow: int) -> None:
    """uint8 images (N, C, H, W) tiled ``nrow`` per row, 2-pixel black borders."""
    grid = make_grid(pixels, nrow=nrow, padding=2)
    write_png(path, grid if pixels.shape[1] != 1 else grid[:1])


def write_labels_csv(path: Path, files: list[str], labels, column: str = "label") -> None:
    """A CSV of what each file was generated for (a class label, a caption...)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", column])
    writer.writerows(zip(files, labels.tolist() if isinstance(labels, torch.Tensor) else labels))
    _atomic_write(path, buffer.getvalue().encode())


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _atomic_write(path, buffer.getvalue())
