"""What pruning saves: the same 12-trial study over learning rate and loss on Fashion-MNIST
(DCGAN, FID at 4 evaluations per trial), run by `ganrun tune` without pruning and with it.

Both studies try the same 12 settings (a grid of 4 learning rates by 3 losses, in an order
drawn from one seed; Optuna's grid sampler skips the points a study has tried, so a study cut
off and resumed still tries each once) and differ only in the pruner. Printed: the iterations each spent (a pruned trial
counts up to the evaluation where it stopped), their wall time, each study's best FID and the
ratios; targets: iterations <= 60% and best FID within 10% of the study without pruning.

    OMP_NUM_THREADS=1 nice python scripts/measure_pruning.py          # ~2 h on one CPU thread
    python scripts/measure_pruning.py --smoke                         # tiny, minutes

A study cut off continues when the script is run again (ganrun tune resumes it).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from measure_presets import machine

SEARCH = """# @package hparams_search
metric: metrics/fid
direction: minimize
n_trials: {n_trials}
evaluations: 4
overrides: [metrics=fid]
sampler:
  _target_: optuna.samplers.GridSampler
  _convert_: all
  seed: 0
  search_space: {{optimizer.lr: {lrs}, loss: {losses}}}
pruner: null   # set per study on the command line
params:
  optimizer.lr: {{choice: {lrs}}}
  loss: {{choice: {losses}}}
"""
LRS = [5.0e-5, 1.5e-4, 5.0e-4, 1.5e-3]
LOSSES = ["bce", "hinge", "lsgan"]
PRUNERS = {
    "none": None,
    "successive_halving": "{_target_:optuna.pruners.SuccessiveHalvingPruner,"
                          "min_resource:auto,reduction_factor:3}",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default="pruning_runs", help="folder of the two studies")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=800, help="trainer.max_steps of a trial")
    parser.add_argument("--num-samples", type=int, default=500, help="generated images per FID")
    parser.add_argument("--real-samples", type=int, default=2000, help="real images for FID")
    parser.add_argument("--smoke", action="store_true", help="tiny: 3 trials of 8 iterations")
    return parser.parse_args()


def trial_args(args) -> list[str]:
    steps, samples, real = args.steps, args.num_samples, args.real_samples
    extra = []
    if args.smoke:
        steps, samples, real = 8, 20, 20
        extra = ["model.latent_dim=8", "dataset.batch_size=8", "model.generator.width=8",
                 "model.discriminator.width=8", "metrics.evaluate.inception.batch_size=10"]
    return ["experiment=dcgan_fashion_mnist", f"dataset.root={args.root}", "hardware=cpu",
            f"trainer.max_steps={steps}", f"metrics.num_samples={samples}",
            f"metrics.real_samples={real}", "callbacks.progress.plain_every_seconds=120", *extra]


def run_study(args, conf: Path, name: str) -> dict:
    folder = Path(args.out) / name
    spent = folder.parent / f"{name}_seconds.txt"
    before = float(spent.read_text()) if spent.is_file() else 0.0
    pruner = PRUNERS[name]
    command = [sys.executable, "-m", "ganrun", "tune", "hparams_search=lr_loss",
               f"hparams_search.study_dir={folder}", *trial_args(args),
               "--config-dir", str(conf)]
    if pruner:
        command.append(f"hparams_search.pruner={pruner}")
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    folder.mkdir(parents=True, exist_ok=True)
    spent.write_text(f"{before + time.perf_counter() - start:.1f}\n")
    (folder.parent / f"{name}_tune.log").write_text(proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"ganrun tune ({name}) failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return summarize(folder, float(spent.read_text()), args)


def summarize(folder: Path, seconds: float, args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ganrun import study as studies

    study = studies.load(folder)
    steps = 8 if args.smoke else args.steps
    iterations, states = 0, {}
    for trial in study.trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
        ran = steps if trial.state.name == "COMPLETE" else max(trial.intermediate_values, default=0)
        iterations += ran
    best = study.best_trial
    return {"iterations": iterations, "seconds": seconds, "states": states,
            "best_fid": best.value, "best_trial": best.number, "best_params": best.params}


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    conf = out / "conf" / "hparams_search"
    conf.mkdir(parents=True, exist_ok=True)
    n_trials = 3 if args.smoke else args.trials
    lrs = LRS[:1] if args.smoke else LRS
    (conf / "lr_loss.yaml").write_text(SEARCH.format(n_trials=n_trials, lrs=lrs, losses=LOSSES))
    results = {name: run_study(args, conf.parent, name) for name in PRUNERS}
    plain, pruned = results["none"], results["successive_halving"]
    ratio = pruned["iterations"] / plain["iterations"]
    fid_gap = pruned["best_fid"] / plain["best_fid"] - 1
    report = {"machine": machine(), "smoke": args.smoke, "trials": n_trials,
              "trial_args": trial_args(args), "studies": results,
              "iterations_ratio": ratio, "seconds_ratio": pruned["seconds"] / plain["seconds"],
              "best_fid_relative_difference": fid_gap,
              "targets_met": ratio <= 0.60 and fid_gap <= 0.10}
    (out / "pruning.json").write_text(json.dumps(report, indent=1))
    print("| study | trials (finished / pruned / failed) | iterations | wall time | best FID |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        s = r["states"]
        print(f"| pruner={name} | {s.get('COMPLETE', 0)} / {s.get('PRUNED', 0)} / "
              f"{s.get('FAIL', 0)} | {r['iterations']} | {r['seconds'] / 60:.1f} min | "
              f"{r['best_fid']:.2f} (trial {r['best_trial']}) |")
    print(f"\niterations: {ratio:.0%} of the study without pruning (target <= 60%); wall time "
          f"{report['seconds_ratio']:.0%}; best FID {fid_gap:+.1%} (target within 10%). "
          f"Machine: {report['machine']}.")


if __name__ == "__main__":
    main()
