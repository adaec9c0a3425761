"""Trains the CPU-sized paired presets on Fashion-MNIST and measures them against their
non-learnt baselines on the same test images, in the same run:

- super-resolution x2 (14x14 -> 28x28, experiment=sr_fashion_mnist): PSNR/SSIM of ganrun's
  output against bicubic up-sampling (target: >= 1.0 dB above bicubic);
- inpainting of the centred 14x14 box (experiment=inpaint_fashion_mnist): PSNR in the hole
  against the diffusion fill (target: >= 2 dB above it);
- for both: FID of the outputs (and of the baseline) against the real test images.

Wall time is each `ganrun train` command's (summed over attempts; a cut-off run continues
from its last.ckpt when the script is run again with the same --out).

    python scripts/measure_paired.py                              # both presets as shipped
    python scripts/measure_paired.py --steps 200 --fid-samples 20   # a smoke run
    python scripts/measure_paired.py --only sr_fashion_mnist
    python scripts/measure_paired.py --stage train   # train now, `--stage eval` later
"""

import argparse
import json
import time
from pathlib import Path

from measure_presets import machine
from timed_runs import seconds_beside, timed_train, trained_seconds

PRESETS = {  # preset: (headline PSNR key, baseline key, target in dB)
    "sr_fashion_mnist": ("psnr", "psnr_bicubic", 1.0),
    "inpaint_fashion_mnist": ("psnr_hole", "psnr_hole_fill", 2.0),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four Fashion-MNIST IDX .gz files")
    parser.add_argument("--only", choices=list(PRESETS), action="append",
                        help="measure this preset only (repeatable)")
    parser.add_argument("--steps", type=int, default=None,
                        help="trainer.max_steps for both presets (default: the presets')")
    parser.add_argument("--num-samples", type=int, default=10000,
                        help="test pairs for PSNR/SSIM (the whole test split by default)")
    parser.add_argument("--fid-samples", type=int, default=300, help="test pairs for the FIDs")
    parser.add_argument("--out", default="paired_runs", help="folder of the runs")
    parser.add_argument("--stage", choices=["all", "train", "eval"], default="all",
                        help="train only, measure the trained runs only, or both (default)")
    parser.add_argument("--device", default="auto", help="where to measure: auto, cpu, cuda")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for ganrun train")
    return parser.parse_args()


def train(preset: str, run: Path, args) -> float:
    steps = [f"trainer.max_steps={args.steps}"] if args.steps else []
    command = ["train", f"experiment={preset}",
               f"dataset.root={args.root}", "dataset.download=false", f"hydra.run.dir={run}",
               "seed=0", "callbacks.progress.refresh_every_n_iterations=500", *steps,
               *args.overrides]
    return timed_train(command, run, seconds_beside(run))


def measure(run: Path, args) -> dict:
    from hydra.utils import instantiate

    from ganrun.inference.loading import load
    from ganrun.metrics.paired import PairedMetrics
    from ganrun.runner.devices import pick_device

    loaded = load(run / "checkpoints" / "last.ckpt", pick_device(args.device))
    metrics = PairedMetrics(num_samples=args.num_samples, fid_samples=args.fid_samples)
    return metrics.evaluate_model(loaded.model, instantiate(loaded.dataset))


def rows(preset: str, values: dict) -> list[str]:
    key, baseline, target = PRESETS[preset]
    gain = values[key] - values[baseline]
    ssim_key, ssim_base = key.replace("psnr", "ssim"), baseline.replace("psnr", "ssim")
    fid_base = next((k for k in values if k.startswith("fid_") and k != "fid_samples"), None)
    lines = [
        f"| {preset} | {key} (dB) | {values[key]:.2f} | {values[baseline]:.2f} | "
        f"{gain:+.2f} dB (target >= +{target:g}) | {'yes' if gain >= target else 'no'} |",
        f"| {preset} | {ssim_key} | {values[ssim_key]:.3f} | {values[ssim_base]:.3f} | | |"]
    if "fid" in values:  # --fid-samples 0: none
        lines.append(f"| {preset} | FID ({values['fid_samples']} images) | {values['fid']:.1f} "
                     f"| {values.get(fid_base, float('nan')):.1f} | | |")
    return lines


def main() -> None:
    args = parse_args()
    out = Path(args.out).resolve()
    table = ["| preset | measure | ganrun | baseline | difference | met |",
             "|---|---|---|---|---|---|"]
    times = []
    for preset in args.only or PRESETS:
        run = out / preset
        seconds = trained_seconds(run, seconds_beside(run)) if args.stage == "eval" else train(preset, run, args)
        if args.stage == "train":
            print(f"{preset}: trained in {run}; measure it with --stage eval", flush=True)
            continue
        start = time.perf_counter()
        values = measure(run, args)
        values.update(train_minutes=seconds / 60, eval_minutes=(time.perf_counter() - start) / 60,
                      machine=machine())
        (run / "paired_metrics.json").write_text(json.dumps(values, indent=2) + "\n")
        table += rows(preset, values)
        times.append(f"{preset}: train {seconds / 60:.1f} min, measure "
                     f"{values['eval_minutes']:.1f} min")
        print(f"{preset}: {json.dumps(values)}", flush=True)
    if args.stage == "train":
        return
    print("\n".join(table))
    print("\n" + "; ".join(times) + f"\n{machine()}")


if __name__ == "__main__":
    main()
