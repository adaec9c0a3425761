"""Real-data features cached on disk, keyed by everything that changes them.

The file name is a hash of the key, and the file holds the key itself and a checksum of the
features: a file written for another key (stale) or damaged (truncated, edited) is detected
when it is read, and the caller recomputes and rewrites it.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

import torch

log = logging.getLogger("ganrun")

FORMAT = 1  # bump when the file layout or the meaning of a key changes


def checksum(features: torch.Tensor) -> str:
    return hashlib.sha256(features.contiguous().numpy().tobytes()).hexdigest()


class FeatureCache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()

    def path(self, key: dict) -> Path:
        text = json.dumps({"format": FORMAT, **key}, sort_keys=True)
        return self.folder / f"real-{hashlib.sha256(text.encode()).hexdigest()[:20]}.pt"

    def load(self, key: dict) -> torch.Tensor | None:
        """The cached features, or None (logging why) when missing, stale or corrupt."""
        path = self.path(key)
        if not path.is_file():
            log.info("Real features: not cached yet (%s)", path)
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            features = entry["features"]
            valid_key = entry["key"] == {"format": FORMAT, **key}
            valid_sum = entry["checksum"] == checksum(features)
        except Exception as err:
            log.warning("Real features: unreadable cache file %s (%s); recomputing", path,
                        type(err).__name__)
            return None
        if not valid_key:
            log.warning("Real features: stale cache file %s (other key); recomputing", path)
            return None
        if not valid_sum:
            log.warning("Real features: corrupt cache file %s (bad checksum); recomputing", path)
            return None
        log.info("Real features: cache hit %s", path)
        return features

    def save(self, key: dict, features: torch.Tensor) -> Path | None:
        """Written to a temporary file and renamed, so a concurrent reader (another sweep job)
        never sees half a file. None (with a warning) where the folder cannot be written: the
        features are then computed again next time, nothing else is lost."""
        path = self.path(key)
        features = features.contiguous()
        entry = {"key": {"format": FORMAT, **key}, "features": features,
                 "checksum": checksum(features)}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(entry, tmp)
            os.replace(tmp, path)
        except OSError as err:
            log.warning("Real features: cannot write the cache %s (%s); they will be computed "
                        "again next time.", path, err.strerror or err)
            return None
        return path

    @contextlib.contextmanager
    def lock(self, key: dict) -> Iterator[None]:
        """Held while one process looks up, computes and writes the entry of ``key``: a second
        process evaluating at the same time waits, then reads what the first wrote instead of
        computing the same features again. Without a writable folder, no lock (and no cache)."""
        lock_path = self.path(key).with_suffix(".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = lock_path.open("a")
        except OSError:
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
