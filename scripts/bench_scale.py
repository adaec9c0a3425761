"""Training speed of `ganrun train` per model and precision, and its DDP scaling on CPU.

Each configuration is timed as in scripts/bench_train.py: the real command for N = --short and
N = --short + --iterations iterations, whose difference of wall times is the cost of the extra
iterations alone (start-up, data reading and final writes cancel out). images/s counts every
real image D sees: iterations * batch * n_critic * processes. Ratios are against the first
configuration (DCGAN, fp32, one process), measured in the same run on the same machine.

    python scripts/bench_scale.py                       # CPU: about 3 minutes
    python scripts/bench_scale.py --hardware gpu        # one GPU (DDP rows need 2 GPUs: --ddp-hardware ddp)
"""

import argparse
import subprocess
import sys
import tempfile
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--iterations", type=int, default=40, help="timed iterations per configuration")
    p.add_argument("--short", type=int, default=5, help="length of the short run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hardware", default="cpu", help="ganrun hardware option of the single-process rows")
    p.add_argument("--ddp-hardware", default="ddp", help="hardware option of the 2-process row")
    p.add_argument("--no-ddp", action="store_true", help="skip the 2-process row")
    return p.parse_args()


def configurations(args) -> list[tuple[str, list[str], int]]:
    """(name, overrides, processes); the first is the baseline."""
    rows = [(f"{model} {precision}", [f"model={model}", f"hardware={args.hardware}",
                                      f"hardware.precision={precision}"], 1)
            for model in ("dcgan", "mlp") for precision in ("32-true", "bf16-mixed")]
    if not args.no_ddp:
        cpu = ["hardware.accelerator=cpu"] if args.hardware == "cpu" else []
        rows.append(("dcgan 32-true, 2 processes (DDP)",
                     ["model=dcgan", f"hardware={args.ddp_hardware}", "hardware.devices=2", *cpu], 2))
    return rows


def seconds(args, overrides: list[str], steps: int, folder: str) -> float:
    cmd = [sys.executable, "-m", "ganrun", "train", f"dataset.root={args.root}",
           f"dataset.batch_size={args.batch_size}", f"trainer.max_steps={steps}", "seed=0",
           "~callbacks.samples", "callbacks.progress.refresh_every_n_iterations=1000",
           f"hydra.run.dir={folder}/{steps}", *overrides]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"`{' '.join(cmd)}` failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def images_per_second(args, overrides: list[str], processes: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        short = seconds(args, overrides, args.short, folder)
        long = seconds(args, overrides, args.short + args.iterations, folder)
    return args.iterations * args.batch_size * processes / max(long - short, 1e-9)


def main():
    args = parse_args()
    results = []
    for name, overrides, processes in configurations(args):
        rate = images_per_second(args, overrides, processes)
        results.append((name, rate))
        base = results[0][1]
        print(f"{name:<36} {rate:9.1f} images/s  {rate / base:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
