"""The metrics `ganrun eval` keeps for one checkpoint file: ``<name>.metrics.json`` beside a
.ckpt (``last.ckpt`` -> ``last.metrics.json``), ``metrics.json`` inside an export folder.

One file per checkpoint, so that evaluating ``iter_0005000.ckpt`` never overwrites what was
measured for ``last.ckpt``. Evaluations of the same file add up (``metrics=fid_kid_pr``, then
``metrics=cas``: both kept; a metric measured again takes its new value). The file also holds
the checkpoint's size and modification time: when the checkpoint has changed since (a resumed
run wrote a new ``last.ckpt``), the old values are dropped rather than mixed with the new.
"""

import json
import logging
from pathlib import Path

from ganrun.files import write_text
from ganrun.inference.exports import WEIGHTS

log = logging.getLogger("ganrun")

STAMP = "checkpoint"  # the key that identifies the evaluated file; not a metric


def metrics_file(path: Path) -> Path:
    return path / "metrics.json" if path.is_dir() else path.with_suffix(".metrics.json")


def stamp_of(path: Path) -> dict:
    source = path / WEIGHTS if path.is_dir() else path
    stat = source.stat()  # the file was just loaded or evaluated: it exists
    return {"file": source.name, "bytes": stat.st_size, "modified_ns": stat.st_mtime_ns}


def read_metrics(path: Path) -> dict:
    """The metrics recorded for the checkpoint as it is now; {} when there are none, the file is
    unreadable, or it describes an earlier version of the checkpoint."""
    try:
        stored = json.loads(metrics_file(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(stored, dict) or stored.get(STAMP) != stamp_of(path):
        return {}
    return {key: value for key, value in stored.items() if key != STAMP}


def record_metrics(path: Path, values: dict) -> Path:
    """Adds ``values`` to the checkpoint's metrics file; returns the file."""
    file = metrics_file(path)
    earlier = read_metrics(path)
    if file.is_file() and not earlier:
        log.info("%s described another version of %s (or was unreadable): replaced", file.name,
                 path.name)
    merged = {**earlier, **values, STAMP: stamp_of(path)}
    return write_text(file, json.dumps(merged, indent=2) + "\n")  # never half a file
