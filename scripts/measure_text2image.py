"""Trains the CPU-sized text-to-image preset on the offline captioned Fashion-MNIST and measures
how well its images match their captions (metrics=text_match), on the test captions:

- class accuracy (a real-image classifier on generated images, against the class the caption
  names; target >= 85%) and attribute accuracy (dark/light, small/large, plain/patterned,
  measured by the function that wrote the captions; target >= 80%), each next to the real test
  images' own, and apart for the held-out combinations training never saw;
- FID of the generated images against the test images of the same captions (target <= 30);
- R-precision with the model's contrastive encoders (generated, and real as the ceiling).

Wall time is the `ganrun train` command's (summed over attempts); a cut-off run continues from
its last.ckpt when the same command is run again.

    OMP_NUM_THREADS=1 nice python scripts/measure_text2image.py       # ~1 h of training
    python scripts/measure_text2image.py --num-samples 20 -- trainer.max_steps=3   # smoke
"""

import argparse
import json
from pathlib import Path

from measure_presets import machine
from timed_runs import seconds_beside, timed_train, trained_seconds

TARGETS = {"class_accuracy": (">= 85%", lambda v: v >= 0.85),
           "attribute_accuracy": (">= 80%", lambda v: v >= 0.80),
           "fid": ("<= 30", lambda v: v <= 30)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--preset", default="text2image_fashion")
    parser.add_argument("--num-samples", type=int, default=1000, help="test captions")
    parser.add_argument("--out", default="text2image_runs", help="folder of the run")
    parser.add_argument("--stage", choices=["all", "train", "eval"], default="all")
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for ganrun train")
    return parser.parse_args()


def train(run: Path, args) -> float:
    command = ["train", f"experiment={args.preset}", f"dataset.root={args.root}",
               "dataset.download=false", f"hydra.run.dir={run}",
               "callbacks.progress.refresh_every_n_iterations=250", *args.overrides]
    return timed_train(command, run, seconds_beside(run))


def measure(run: Path, args) -> dict:
    import torch
    from hydra.utils import instantiate

    from ganrun.inference.loading import load
    from ganrun.metrics.text_match import TextMatch
    from ganrun.runner.devices import pick_device

    loaded = load(run / "checkpoints" / "last.ckpt", pick_device(args.device))
    data = instantiate({**loaded.dataset, "root": args.root, "download": False})
    torch.manual_seed(0)
    return TextMatch(num_samples=args.num_samples).evaluate_model(loaded.model, data)


def percent(values: dict, key: str) -> str:
    return f"{values[key]:.1%}" if key in values else "–"


def main() -> None:
    args = parse_args()
    run = Path(args.out).resolve() / args.preset
    seconds = trained_seconds(run, seconds_beside(run)) if args.stage == "eval" else \
        train(run, args)
    if args.stage == "train":
        print(f"trained in {run}; measure it with --stage eval")
        return
    values = measure(run, args)
    values.update(train_minutes=seconds / 60, machine=machine())
    (run / "text_match.json").write_text(json.dumps(values, indent=2) + "\n")
    rows = ["| measure | generated | real test images | held out (generated / real) | target | met |",
            "|---|---|---|---|---|---|"]
    for key in ("class_accuracy", "attribute_accuracy"):
        target, met = TARGETS[key]
        rows.append(f"| {key.replace('_', ' ')} | {percent(values, key)} | "
                    f"{percent(values, key + '_real')} | {percent(values, key + '_held_out')} / "
                    f"{percent(values, key + '_held_out_real')} | {target} | "
                    f"{'yes' if met(values[key]) else 'no'} |")
    target, met = TARGETS["fid"]
    rows.append(f"| FID vs test images ({values['num_samples']}) | {values['fid']:.1f} | | | "
                f"{target} | {'yes' if met(values['fid']) else 'no'} |")
    rows.append(f"| R-precision (1 of 100) | {percent(values, 'r_precision')} | "
                f"{percent(values, 'r_precision_real')} | | | |")
    print("\n".join(rows))
    print(f"\ntrain {seconds / 60:.1f} min; {values['machine']}; "
          f"{values.get('held_out_samples', 0)} held-out test captions")


if __name__ == "__main__":
    main()
