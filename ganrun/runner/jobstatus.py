"""``status.json`` in each run folder: whether the run is running, finished or failed, and
its wall time, so that ``ganrun report`` can tell jobs apart from their files alone."""

import json
import math
import time
from pathlib import Path

from ganrun.errors import UserError
from ganrun.files import write_text

FILE = "status.json"
STATUSES = ("running", "finished", "failed", "stopped", "pruned")
# key -> the types its value may have; anything else in a file is dropped (or refused).
FIELDS = {"status": (str,), "started": (int, float), "ended": (int, float),
          "wall_s": (int, float), "objective": (int, float, type(None)), "error": (str,),
          "wall_s_total": (int, float)}


def write(folder: str | Path, status: str, **extra) -> None:
    """Record ``status`` (running, finished, failed, stopped); keeps the start time. The wall
    time of a resumed run adds up over its attempts (``wall_s_total``)."""
    path = Path(folder) / FILE
    before = read(folder)
    record = before if status != "running" else {}
    if status == "running":
        record["wall_s_before"] = before.get("wall_s_total", before.get("wall_s", 0.0)) \
            if before.get("status") != "running" else before.get("wall_s_before", 0.0)
    record.setdefault("started", time.time())
    record.update(status=status, **extra)
    if status != "running":
        record["ended"] = time.time()
        record["wall_s"] = record["ended"] - record["started"]
        record["wall_s_total"] = record.get("wall_s_before", 0.0) + record["wall_s"]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=1))  # a reader never sees half a file


def read(folder: str | Path, strict: bool = False) -> dict:
    """The recorded status: {} for a folder without one (a run from an older ganrun). A file
    that is not such a record gives {} (``strict``: a ``UserError`` naming it); fields of
    another type are dropped."""
    path = Path(folder) / FILE
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as err:
        if strict:
            raise UserError(f"{path} cannot be read ({' '.join(str(err).split())[:120]}): it is "
                            "damaged. Remove it (the run then shows as 'unknown'), or the job "
                            "folder.") from None
        return {}
    if not isinstance(record, dict):
        if strict:
            raise UserError(f"{path} is not a status record (it holds "
                            f"{type(record).__name__} data). Remove it (the run then shows as "
                            "'unknown'), or the job folder.")
        return {}
    kept = {key: value for key, value in record.items()
            if key in FIELDS and isinstance(value, FIELDS[key]) and not isinstance(value, bool)
            and not (isinstance(value, float) and not math.isfinite(value))}
    kept.update({k: v for k, v in record.items() if k == "wall_s_before"
                 and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if kept.get("status") not in STATUSES:
        kept.pop("status", None)
    return kept
