"""``status.json`` in each run folder: whether the run is running, finished or failed, and
its wall time, so that ``ganrun report`` can tell jobs apart from their files alone."""

import json
import time
from pathlib import Path

FILE = "status.json"


def write(folder: str | Path, status: str, **extra) -> None:
    """Record ``status`` (running, finished, failed, stopped); keeps the start time."""
    path = Path(folder) / FILE
    record = read(folder) if status != "running" else {}
    record.setdefault("started", time.time())
    record.update(status=status, **extra)
    if status != "running":
        record["ended"] = time.time()
        record["wall_s"] = record["ended"] - record["started"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)  # a reader never sees half a file


def read(folder: str | Path) -> dict:
    """The recorded status, or {} for a folder without one (a run from an older ganrun)."""
    try:
        return json.loads((Path(folder) / FILE).read_text())
    except (OSError, ValueError):
        return {}
