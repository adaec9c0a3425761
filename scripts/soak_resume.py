"""Soak test of kill-and-resume: many short runs, killed at random moments, resumed until done.

Each trial trains the same tiny run (same seed) while a random SIGTERM, SIGINT or SIGKILL lands
every few seconds; after each kill the run is continued with ``resume=true``. When it finally
completes, its logged losses are compared with an uninterrupted reference run: a trial counts
as exact when every logged value, on every step, is identical. Target: all trials exact.

    python scripts/soak_resume.py --trials 10 --steps 30
"""

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import scalars  # noqa: E402
from fakedata import write_mnist  # noqa: E402

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]


def command(root: Path, run: Path, steps: int, seed: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "ganrun", "train", "dataset=mnist", f"dataset.root={root}",
            "dataset.batch_size=8", "model.latent_dim=8", "hardware=cpu", f"seed={seed}",
            f"trainer.max_steps={steps}", "callbacks.scalars.every_n_iterations=1",
            "callbacks.checkpoint.last_every_n_iterations=3", f"hydra.run.dir={run}",
            *(["resume=true"] if resume else [])]


def run_with_kills(args, root: Path, run: Path, rng: random.Random) -> int:
    """Runs to completion under random kills; returns the number of kills that landed."""
    kills = 0
    while True:
        started = (run / "checkpoints" / "last.ckpt").is_file()
        proc = subprocess.Popen(command(root, run, args.steps, args.seed, started),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            proc.wait(timeout=rng.uniform(args.min_delay, args.max_delay))
        except subprocess.TimeoutExpired:
            proc.send_signal(rng.choice(SIGNALS))
            kills += 1
        _, err = proc.communicate()
        if proc.returncode == 0:
            return kills
        if proc.returncode not in (128 + 2, 128 + 15, -2, -9, -15):  # stopped, or killed early
            raise SystemExit(f"unexpected exit {proc.returncode}:\n{err[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-delay", type=float, default=8.0, help="seconds before a kill")
    parser.add_argument("--max-delay", type=float, default=16.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_mnist(tmp / "data", n_train=64, n_test=8)
        subprocess.run(command(tmp / "data", tmp / "reference", args.steps, args.seed, False),
                       check=True, capture_output=True)
        reference = scalars(tmp / "reference")
        exact, started = 0, time.time()
        for trial in range(args.trials):
            run = tmp / f"trial{trial}"
            kills = run_with_kills(args, tmp / "data", run, rng)
            same = scalars(run) == reference
            exact += same
            print(f"trial {trial}: {kills} kills, {'exact' if same else 'DIFFERENT'}", flush=True)
    print(f"resumed exactly: {exact}/{args.trials} trials ({time.time() - started:.0f} s)")
    sys.exit(0 if exact == args.trials else 1)


if __name__ == "__main__":
    main()
