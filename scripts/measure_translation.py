"""Trains the CPU-sized CycleGAN preset on the offline Fashion-MNIST domains and measures it.

Prints, next to the baselines measured in the same run on the same test images:
- FID(G_AB(test A), test B) against FID(test A, test B) untranslated (target: at most half);
- label preservation: a classifier trained on real domain B labels G_AB(test A) with A's
  labels (target: >= 90%), against the same classifier on untranslated test A, and on test B.
Wall time is the `ganrun train` command's (summed over attempts); a cut-off run continues from
its last.ckpt when the same command is run again.

    python scripts/measure_translation.py                       # the preset, ~minutes on a CPU
    python scripts/measure_translation.py --num-samples 200 -- trainer.max_steps=20   # smoke
    python scripts/measure_translation.py --stage train   # train now, `--stage eval` later

The measurements run on a GPU when there is one (`--device`).
"""

import argparse
import json
from pathlib import Path

from measure_presets import machine
from timed_runs import seconds_beside, timed_train, trained_seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four Fashion-MNIST IDX .gz files")
    parser.add_argument("--preset", default="cyclegan_fashion_mnist")
    parser.add_argument("--num-samples", type=int, default=1000, help="test images per domain")
    parser.add_argument("--classifier-steps", type=int, default=4000,
                        help="training steps of the domain-B classifier (its accuracy on real "
                             "test B is the ceiling of label preservation; cosine decay, flips)")
    parser.add_argument("--out", default="translation_runs", help="folder of the run")
    parser.add_argument("--stage", choices=["all", "train", "eval"], default="all",
                        help="train only, measure the trained run only, or both (default)")
    parser.add_argument("--device", default="auto", help="where to measure: auto, cpu, cuda")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for ganrun train")
    return parser.parse_args()


def train(run: Path, args) -> float:
    command = ["train", f"experiment={args.preset}",
               f"dataset.root={args.root}", "dataset.download=false", f"hydra.run.dir={run}",
               "callbacks.progress.refresh_every_n_iterations=500", *args.overrides]
    return timed_train(command, run, seconds_beside(run))


def measure(run: Path, num_samples: int, classifier_steps: int, device: str) -> dict:
    from hydra.utils import instantiate

    from ganrun.inference.loading import load
    from ganrun.metrics.translation import TranslationMetrics
    from ganrun.runner.devices import pick_device

    loaded = load(run / "checkpoints" / "last.ckpt", pick_device(device))
    data = instantiate(loaded.dataset)
    data.setup()
    metrics = TranslationMetrics(num_samples=num_samples, classifier_steps=classifier_steps)
    return metrics.evaluate_model(loaded.model, data)


def main() -> None:
    args = parse_args()
    run = Path(args.out).resolve() / args.preset
    seconds = trained_seconds(run, seconds_beside(run)) if args.stage == "eval" else train(run, args)
    if args.stage == "train":
        print(f"trained in {run}; measure it with --stage eval")
        return
    values = measure(run, args.num_samples, args.classifier_steps, args.device)
    values.update(train_minutes=seconds / 60, machine=machine())
    (run / "translation_metrics.json").write_text(json.dumps(values, indent=2) + "\n")
    fid_ok = values["fid_ab"] <= values["fid_identity"] / 2
    rows = ["| measure | G_AB (translated) | baseline | target | met |", "|---|---|---|---|---|",
            f"| FID vs test B ({values['num_samples']} images) | {values['fid_ab']:.1f} | "
            f"{values['fid_identity']:.1f} (untranslated A) | <= half the baseline | "
            f"{'yes' if fid_ok else 'no'} |"]
    if "label_preservation" in values:
        kept = values["label_preservation"]
        identity = values.get("label_preservation_identity")
        shown = f"{identity:.1%} (identity map)" if identity is not None else "–"
        rows.append(f"| label preservation ({values['label_samples']} images) | {kept:.1%} | "
                    f"{shown} | >= 90% | {'yes' if kept >= 0.9 else 'no'} |")
        rows.append(f"| B classifier on real test B (all) | | {values['label_accuracy_b']:.1%} "
                    "| | |")
    print("\n".join(rows))
    print(f"\ntrain {seconds / 60:.1f} min; {values['machine']}")


if __name__ == "__main__":
    main()
