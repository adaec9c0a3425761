"""What the measurement scripts share: `ganrun train` timed over all its attempts (a run cut
off and resumed counts every attempt), and the recorded time of a run trained earlier."""

import subprocess
import sys
import time
from pathlib import Path


def timed_train(train_args: list[str], run: Path, spent: Path) -> float:
    """Runs ``ganrun <train_args>`` (which continues a cut-off run from its last.ckpt) and
    returns the seconds of all attempts. They are written to ``spent`` also when the run fails
    or is stopped by a signal, so that the next attempt adds to them."""
    before = float(spent.read_text()) if spent.is_file() else 0.0
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ganrun", *train_args], capture_output=True,
                          text=True)
    seconds = before + time.perf_counter() - start
    if run.is_dir():
        spent.write_text(f"{seconds:.1f}\n")
    if proc.returncode != 0:
        sys.exit(f"ganrun {' '.join(train_args)} failed ({proc.returncode}):\n"
                 f"{proc.stderr[-3000:]}")
    return seconds


def seconds_beside(run: Path) -> Path:
    """Where a run's training time is kept beside its folder (``<name>_train_seconds.txt``)."""
    return run.parent / f"{run.name}_train_seconds.txt"


def trained_seconds(run: Path, spent: Path) -> float:
    """The recorded training time of a run trained earlier (``--stage eval``)."""
    if not (run / "checkpoints" / "last.ckpt").is_file() or not spent.is_file():
        sys.exit(f"--stage eval: {run} holds no trained run. Train it first (--stage train "
                 "or --stage all) with the same --out.")
    return float(spent.read_text())
