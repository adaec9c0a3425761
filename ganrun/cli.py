"""The ``ganrun`` command: dispatches to sub-commands."""

import importlib
import os
import sys

COMMANDS = {
    "train": ("ganrun.commands.train", "train a GAN from config groups (ganrun train --help lists them)"),
    "sample": ("ganrun.commands.sample", "write generated images of a checkpoint (PNG files, .npz, grid)"),
    "eval": ("ganrun.commands.eval", "FID/KID/IS/precision-recall of a checkpoint or between two image folders"),
    "translate": ("ganrun.commands.translate", "apply a trained translator (CycleGAN, pix2pix, SR, inpainting) to a folder of images"),
    "export": ("ganrun.commands.export", "write a checkpoint's generator as a shareable folder (safetensors + JSON)"),
    "demo": ("ganrun.commands.demo", "explore a trained model in a local web page (seeds, classes, truncation, translation)"),
    "tune": ("ganrun.commands.tune", "run an Optuna study of training runs (hparams_search=...), pruned and resumable"),
    "report": ("ganrun.commands.report", "compare the runs of a sweep or study: table sorted by FID, CSV/Markdown, plot"),
    "fid-stats": ("ganrun.commands.fid_stats", "write a real set's FID statistics (.npz of mu, sigma), e.g. for real="),
    "fid-weights": ("ganrun.commands.fid_weights", "install the FID Inception weights offline (--from FILE)"),
}

USAGE = """usage: ganrun <command> [args...]

A config-driven experiment runner for generative adversarial networks.

commands:
{commands}

Examples:
  ganrun train model=dcgan dataset=fashion_mnist
  ganrun train -m loss=bce,hinge optimizer.lr=1e-4,2e-4
  tensorboard --logdir outputs
"""


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        lines = "\n".join(f"  {name:<13}{text}" for name, (_, text) in COMMANDS.items())
        print(USAGE.format(commands=lines))
        sys.exit(0 if args else 2)
    if args[0] in ("--version", "-V"):
        from ganrun import __version__
        print(f"ganrun {__version__}")
        return
    if args[0] in ("-sc", "--shell-completion"):
        args = ["train", *args]
        _complete_as_train()
    if args[0] not in COMMANDS:
        print(f"ganrun: error: unknown command '{args[0]}'. Valid commands: "
              f"{', '.join(COMMANDS)}. See `ganrun --help`.", file=sys.stderr)
        sys.exit(2)
    try:
        module = importlib.import_module(COMMANDS[args[0]][0])
        module.main(args[1:])
    except KeyboardInterrupt:
        # Ctrl-C outside training (start-up, eval, sample): nothing to save, no traceback.
        # During training ganrun train checkpoints first and exits on its own.
        print(f"ganrun {args[0]}: interrupted.", file=sys.stderr, flush=True)
        sys.exit(130)
    except RuntimeError as err:
        explained = _mismatched_torchvision(err)
        if not explained:
            raise
        print(f"ganrun {args[0]}: error: {explained}", file=sys.stderr)
        sys.exit(1)


def _mismatched_torchvision(err: RuntimeError) -> str | None:
    """The one-line explanation of torchvision's error when it was built for another torch."""
    if "torchvision::" not in str(err) or "does not exist" not in str(err):
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        pair = f"torch {version('torch')} with torchvision {version('torchvision')}"
    except PackageNotFoundError:
        pair = "this torch and torchvision"
    return (f"{pair} is not a matching pair (torchvision's compiled operators were built for "
            "another torch release, so it cannot load). Install the two together from one "
            "index, e.g. pip install \"torch<2.15\" \"torchvision<0.30\" (add --index-url "
            "https://download.pytorch.org/whl/cpu on a machine without a GPU).")


def _complete_as_train() -> None:
    """Hydra's completion script calls ``ganrun -sc query=bash`` with the line being typed in
    COMP_LINE; drop its ``train`` word so that Hydra completes the train app's overrides."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split(" ")
    if len(words) > 1 and words[1] == "train":
        os.environ["COMP_LINE"] = " ".join(words[:1] + words[2:])
        point = int(os.environ.get("COMP_POINT", len(line)))
        os.environ["COMP_POINT"] = str(max(0, point - len("train ")))


if __name__ == "__main__":  # python -m ganrun.cli, as python -m ganrun
    main()
