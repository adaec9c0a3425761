"""Reader for the IDX files of MNIST-style data sets (format: http://yann.lecun.com/exdb/mnist/)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ganrun.data.base import one_line
from ganrun.errors import UserError

IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dims (N, H, W)
LABELS_MAGIC = 0x00000801  # uint8 data, 1 dim (N,)


def _damaged(path: Path, why: str) -> UserError:
    return UserError(
        f"The data file {path} is damaged: {why}. Delete it and download it again "
        "(dataset.download=true), or reinstall the package that provided it.")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # bad or truncated gzip streams included
        raise _damaged(path, f"it cannot be read ({one_line(err)})") from err


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The array stored in an IDX file (optionally gzipped) whose magic number must be ``magic``."""
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise _damaged(path, f"it does not start with the IDX magic number {magic:#010x}")
    dims = [int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4)]
    if len(data) - header != math.prod(dims):
        raise _damaged(path, f"its header announces {' x '.join(map(str, dims))} values "
                             f"but it holds {len(data) - header} bytes of data")
    # frombuffer over bytes is read-only; copy so torch.from_numpy gets a writable array.
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()
