"""Soak test of kill-and-resume: many short runs, killed at random moments, resumed until done.

Each trial trains the same tiny run (same seed) while a random SIGTERM, SIGINT or SIGKILL lands
every few seconds; after each kill the run is continued with ``resume=true``. When it finally
completes, its logged losses are compared with an uninterrupted reference run: a trial counts
as exact when every logged value, on every step, is identical. Target: all trials exact.

    python scripts/soak_resume.py --trials 10 --steps 30 --keep soak_failures

A trial that differs prints the first differing tag and step; with ``--keep`` its run folder
(with every attempt's stderr and the signal that ended it, in attempts.log) is kept.
"""

import argparse
import logging
import random
import shutil
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
        delay, sent = rng.uniform(args.min_delay, args.max_delay), None
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            sent = rng.choice(SIGNALS)
            proc.send_signal(sent)
            kills += 1
        _, err = proc.communicate()
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "attempts.log", "a") as log:
            log.write(f"=== attempt {kills}: resume={started}, "
                      f"{sent.name if sent else 'no signal'} after {delay:.1f} s, "
                      f"exit {proc.returncode}\n{err[-4000:]}\n")
        if proc.returncode == 0:
            return kills
        if proc.returncode not in (128 + 2, 128 + 15, -2, -9, -15):  # stopped, or killed early
            raise SystemExit(f"unexpected exit {proc.returncode}:\n{err[-3000:]}")


def first_difference(run: dict, reference: dict) -> str:
    """The first tag and step where a run's logged values differ from the reference's."""
    for tag in sorted(set(run) | set(reference)):
        got, want = run.get(tag, []), reference.get(tag, [])
        for (step, value), (ref_step, ref_value) in zip(got, want):
            if (step, value) != (ref_step, ref_value):
                return f"{tag}: step {step} = {value} where the reference has step {ref_step} = {ref_value}"
        if len(got) != len(want):
            return f"{tag}: {len(got)} points, the reference has {len(want)}"
    return "no difference"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-delay", type=float, default=8.0, help="seconds before a kill")
    parser.add_argument("--max-delay", type=float, default=16.0)
    parser.add_argument("--keep", type=Path, help="folder to copy the run folders of differing trials into")
    args = parser.parse_args()
    # The reader reports each resume's purge of the killed run's last points: expected here.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
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
            logged = scalars(run)
            same = logged == reference
            exact += same
            print(f"trial {trial}: {kills} kills, "
                  f"{'exact' if same else 'DIFFERENT: ' + first_difference(logged, reference)}", flush=True)
            if not same and args.keep:
                shutil.copytree(run, args.keep / f"trial{trial}", dirs_exist_ok=True)
                shutil.copytree(tmp / "reference", args.keep / "reference", dirs_exist_ok=True)
    print(f"resumed exactly: {exact}/{args.trials} trials ({time.time() - started:.0f} s)")
    sys.exit(0 if exact == args.trials else 1)


if __name__ == "__main__":
    main()
