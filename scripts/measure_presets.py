"""Trains each Fashion-MNIST preset and measures its FID: the README's preset table.

Protocol (Lucic et al. 2018, "Are GANs Created Equal?"): train ``--epochs`` (20) epochs on the
60,000 training images, then `ganrun eval` the last checkpoint: FID (Inception 2048-d, TF1
resize) of ``--num-samples`` (10,000) generated images against the 10,000 test images. Wall
time is the `ganrun train` command's, start-up and data loading included; machine is the CPU
and GPU that ran it. Prints one Markdown row per preset as it finishes, then the table.

    python scripts/measure_presets.py                  # all presets, the full protocol (GPU)
    python scripts/measure_presets.py --presets wgan_gp_fashion_mnist -- hardware=[gpu,bf16]
    python scripts/measure_presets.py --max-steps 2 --num-samples 20 --real-samples 20  # smoke

Needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist) and the FID Inception
weights (downloaded on first use, or offline `ganrun fid-weights --from FILE`). Overrides after
``--`` go to every `ganrun train` command.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

TRAIN_IMAGES = 60000  # Fashion-MNIST's training split
PRESETS = ["dcgan_fashion_mnist", "wgan_fashion_mnist", "wgan_gp_fashion_mnist",
           "cgan_fashion_mnist", "sngan_fashion_mnist"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four Fashion-MNIST IDX .gz files")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this many iterations instead (smoke tests)")
    parser.add_argument("--num-samples", type=int, default=10000, help="generated images")
    parser.add_argument("--real-samples", type=int, default=None,
                        help="test images (default: all 10,000)")
    parser.add_argument("--out", default="preset_runs", help="folder of the runs")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for ganrun train")
    return parser.parse_args()


def ganrun(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "ganrun", *args], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"ganrun {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def train(preset: str, run: Path, args) -> float:
    length = [f"trainer.max_steps={args.max_steps}"] if args.max_steps else \
        [f"trainer.max_epochs={args.epochs}", "trainer.max_steps=null"]
    start = time.perf_counter()
    ganrun("train", f"experiment={preset}", f"dataset.root={args.root}", "dataset.download=false",
           *length, f"hydra.run.dir={run}", "callbacks.progress.refresh_every_n_iterations=1000",
           *args.overrides)
    return time.perf_counter() - start


def fid(run: Path, args) -> float:
    extra = [f"metrics.real_samples={args.real_samples}"] if args.real_samples else []
    proc = ganrun("eval", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "metrics=fid",
                  f"num_samples={args.num_samples}", *extra)
    return json.loads(proc.stdout.strip().splitlines()[-1])["fid"]


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    return f"{cpu}, {gpu}"


def epochs_done(run: Path) -> str:
    """Passes over the training data: every D update draws its own real batch."""
    import torch

    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu",
                       weights_only=False)["ganrun"]
    images = state["d_updates"] * state["config"]["dataset"]["batch_size"]
    return f"{images / TRAIN_IMAGES:.3g}"


def main() -> None:
    args = parse_args()
    rows = ["| preset | epochs | FID | wall time | machine |", "|---|---|---|---|---|"]
    for preset in args.presets:
        run = Path(args.out) / preset
        seconds = train(preset, run, args)
        row = f"| `{preset}` | {epochs_done(run)} | {fid(run, args):.1f} | " \
              f"{seconds / 60:.1f} min | {machine()} |"
        print(row, flush=True)
        rows.append(row)
    print("\n".join(["", *rows]))


if __name__ == "__main__":
    main()
