"""Trains each Fashion-MNIST preset and measures its FID: the README's preset table.

Three protocols (``--protocol``), named in every row:
- ``full`` (Lucic et al. 2018, "Are GANs Created Equal?"): 20 epochs on the 60,000 training
  images, then FID-10k: 10,000 generated images against the 10,000 test images. For a GPU.
- ``short`` (for a CPU): 5 epochs, FID of 5,000 generated images against the 10,000 test images.
- ``studiogan`` (StudioGAN's CIFAR-10 benchmark, for ``stylegan2_cifar10`` on a GPU): 100,000
  iterations, FID-10k against the 10,000 test images; its target there is FID < 10.
FID uses the Inception 2048-d features with the TF1 resize; precision/recall (k=3) come from the
same features, and labelled presets also get the class coverage of ``metrics=class_coverage``
and the Classification Accuracy Score of ``metrics=cas`` (next to the real-data classifier's).
Wall time is the `ganrun train` command's, start-up and data loading included (summed over
attempts when a cut-off run was resumed); machine is the CPU and GPU that trained it, and the
one that evaluated it where that was another (``--stage train`` on one, ``--stage eval`` on the
other). Prints one Markdown row per preset as it finishes, then the table.

A preset whose run folder already holds ``result.json`` is not measured again, a run cut off
during training continues from its ``last.ckpt``, and an evaluation cut off keeps the metrics
groups it finished (``evaluations.json``): re-running the same command resumes.

    python scripts/measure_presets.py --protocol short      # all presets, on a CPU
    python scripts/measure_presets.py                       # the full protocol (GPU)
    python scripts/measure_presets.py --presets wgan_gp_fashion_mnist -- hardware=[gpu,bf16]
    python scripts/measure_presets.py --protocol studiogan --presets stylegan2_cifar10 \
        --root /path/to/cifar10 -- hardware=gpu     # the folder that holds cifar-10-batches-py
    python scripts/measure_presets.py --max-steps 2 --num-samples 20 --real-samples 20  # smoke
    python scripts/measure_presets.py --stage train    # train now, `--stage eval` later

`--stage train` stops after training (e.g. while the FID weights are still being copied to a
GPU machine); `--stage eval` then measures the trained runs without training again.

Needs the Fashion-MNIST files (apt-get install dataset-fashion-mnist) and the FID Inception
weights (downloaded on first use, or offline `ganrun fid-weights --from FILE`). Overrides after
``--`` go to every `ganrun train` command.
"""

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

from timed_runs import timed_train, trained_seconds

# A protocol trains for a number of epochs or of iterations (max_steps), then measures FID.
PROTOCOLS = {"full": {"epochs": 20, "num_samples": 10000},
             "short": {"epochs": 5, "num_samples": 5000},
             "studiogan": {"max_steps": 100000, "num_samples": 10000}}
LABELLED = {"cgan_fashion_mnist"}  # presets whose generator takes class labels
PRESETS = ["dcgan_fashion_mnist", "wgan_fashion_mnist", "wgan_gp_fashion_mnist",
           "cgan_fashion_mnist", "sngan_fashion_mnist", "stylegan2_fashion_mnist"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist",
                        help="the data set's folder (dataset.root), by default the one with "
                             "the four Fashion-MNIST IDX .gz files")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="full")
    parser.add_argument("--epochs", type=int, default=None, help="default: the protocol's")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="iterations instead of epochs (default: the protocol's, if it "
                             "counts iterations; small numbers make smoke tests)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="generated images (default: the protocol's)")
    parser.add_argument("--real-samples", type=int, default=None,
                        help="test images (default: all 10,000)")
    parser.add_argument("--out", default="preset_runs", help="folder of the runs")
    parser.add_argument("--stage", choices=["all", "train", "eval"], default="all",
                        help="train only, evaluate trained runs only, or both (default)")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for ganrun train")
    args = parser.parse_args(argv)
    protocol = PROTOCOLS[args.protocol]
    if args.epochs is None and args.max_steps is None:
        args.epochs, args.max_steps = protocol.get("epochs"), protocol.get("max_steps")
    if args.num_samples is None:
        args.num_samples = protocol["num_samples"]
    return args


def ganrun(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "ganrun", *args], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"ganrun {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def train(preset: str, run: Path, args) -> float:
    """Trains (or continues a cut-off run); returns the seconds of all attempts so far."""
    return timed_train(train_command(preset, run, args), run, run / "train_seconds.txt")


def train_command(preset: str, run: Path, args) -> list[str]:
    length = [f"trainer.max_steps={args.max_steps}", "trainer.max_epochs=null"] if args.max_steps else \
        [f"trainer.max_epochs={args.epochs}", "trainer.max_steps=null"]
    return ["train", f"experiment={preset}", f"dataset.root={args.root}",
            "dataset.download=false", *length, f"hydra.run.dir={run}",
            "callbacks.progress.refresh_every_n_iterations=1000", *args.overrides]


def evaluate(run: Path, metrics: str, args) -> dict:
    proc = ganrun(*eval_command(run, metrics, args))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def eval_command(run: Path, metrics: str, args) -> list[str]:
    extra = [f"metrics.real_samples={args.real_samples}"] if args.real_samples else []
    return ["eval", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"metrics={metrics}",
            f"num_samples={args.num_samples}", *extra]


def measure(preset: str, args) -> dict:
    """The preset's row values; cached in its run folder so a re-run skips finished presets."""
    run = Path(args.out) / preset
    result_file = run / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    if args.stage == "eval":
        seconds = trained_seconds(run, run / "train_seconds.txt")
    else:
        seconds = train(preset, run, args)
        (run / "train_machine.txt").write_text(machine() + "\n")
    if args.stage == "train":
        return {}
    result = {}
    for values in evaluations(preset, run, args):
        result.update(values)
    result.update(protocol=args.protocol, epochs=epochs_done(run), train_seconds=seconds,
                  num_samples=args.num_samples, machine=machines(run))
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def evaluations(preset: str, run: Path, args) -> list[dict]:
    """Each metrics group's values; kept in ``evaluations.json`` as each one finishes, so an
    evaluation cut off in its last group (CAS trains classifiers) does not measure FID again."""
    # KID needs num_samples >= its subset size: FID and precision/recall alone for smoke runs.
    groups = ["fid_kid_pr" if args.num_samples >= 1000 else "fid"]
    if preset in LABELLED:
        groups += ["class_coverage", "cas"]
    record = run / "evaluations.json"
    done = json.loads(record.read_text()) if record.is_file() else {}
    for group in groups:
        if group not in done:
            done[group] = evaluate(run, group, args)
            record.write_text(json.dumps(done, indent=2) + "\n")
    return [done[group] for group in groups]


def row(preset: str, r: dict) -> str:
    def num(key, fmt):
        return format(r[key], fmt) if key in r else "–"

    cas = f"{r['cas']:.1%} (real {r['cas_real']:.1%})" if "cas" in r else "–"
    return (f"| `{preset}` | {r['protocol']} | {r['epochs']} | {num('fid', '.1f')} | "
            f"{num('precision', '.2f')} | {num('recall', '.2f')} | "
            f"{num('classes_covered', '.0f')} | {cas} | {r['train_seconds'] / 60:.1f} min | "
            f"{r['machine']} |")


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


def machines(run: Path) -> str:
    """The machine that trained the run, and the one that evaluated it where they differ
    (trained on a GPU loan, FID measured later on a CPU)."""
    here, record = machine(), run / "train_machine.txt"
    trained = record.read_text().strip() if record.is_file() else here
    return here if trained == here else f"trained on {trained}; evaluated on {here}"


def epochs_done(run: Path) -> str:
    """Passes over the run's training split (its size read from the data set itself): every
    batch is drawn once."""
    from hydra.utils import instantiate

    from ganrun.runner.checkpoints import read_checkpoint, run_state

    state = run_state(read_checkpoint(run / "checkpoints" / "last.ckpt"))
    images = state.counters["batches"] * state.config["dataset"]["batch_size"]
    data = instantiate({**state.config["dataset"], "split": "train", "download": False})
    data.setup()
    return f"{images / len(data.dataset):.3g}"


def main() -> None:
    args = parse_args()
    rows = ["| preset | protocol | epochs | FID | precision | recall | classes covered | "
            "CAS | train time | machine |", "|---|---|---|---|---|---|---|---|---|---|"]
    for preset in args.presets:
        result = measure(preset, args)
        if not result:
            print(f"{preset}: trained in {args.out}/{preset}; measure it with --stage eval")
            continue
        line = row(preset, result)
        print(line, flush=True)
        rows.append(line)
    print("\n".join(["", *rows]))


if __name__ == "__main__":
    main()
