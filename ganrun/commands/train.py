"""``ganrun train``: compose the config groups, then train (``ganrun.runner.training``).

Only what the command line needs is imported at start-up: ``--help``, a misspelled key or a
bad override are answered before torch and Lightning are loaded."""

import logging
import os
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ganrun.choices import header as choices_header
from ganrun.commands.hydra_app import check_command_line, composed_mode, print_help
from ganrun.config import config_dir
from ganrun.errors import UserError, one_paragraph, user_error_behind
from ganrun.private_apis import hydra_args_parser, run_hydra
from ganrun.runner import jobstatus, run_folder
from ganrun.runner.resume import resume_overrides

log = logging.getLogger("ganrun")

def task(cfg: DictConfig) -> float | None:
    """The Hydra task: a ``UserError`` becomes one clear message and a non-zero exit.

    The run folder's status.json says how the run ended, for ``ganrun report``.
    """
    from ganrun.runner.training import train

    record = _status_writer()
    record("running")
    try:
        value, status = train(cfg)
    except SystemExit as exc:  # a stop signal: last.ckpt was saved, the run can be resumed
        record("stopped" if exc.code else "finished")
        raise
    except Exception as exc:
        record("failed", error=" ".join(str(exc).split())[:4000])  # the whole paragraph
        err = user_error_behind(exc)
        if err is None or os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"ganrun train: error: {one_paragraph(err)}", file=sys.stderr, flush=True)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return float("nan")  # the sweep goes on; SweepSummary reports the job as failed
        if _rank() == 0:
            run_folder.remove_if_unstarted(HydraConfig.get().runtime.output_dir)
        sys.exit(2)
    record(status, objective=value)
    return value


def _status_writer():
    # Rank 0 alone writes: under DDP every rank runs this task.
    folder = HydraConfig.get().runtime.output_dir
    return lambda status, **extra: (jobstatus.write(folder, status, **extra)
                                    if _rank() == 0 else None)


def _rank() -> int:
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return rank_zero_only.rank


def main(argv: list[str]) -> None:
    # Parse the overrides ourselves so that sys.argv keeps `train`: Lightning's DDP launcher
    # re-runs sys.argv in every rank.
    parser = hydra_args_parser()
    parser.prog = "ganrun train"
    try:
        argv = resume_overrides(argv)
    except UserError as err:
        print(f"{parser.prog}: error: {one_paragraph(err)}", file=sys.stderr, flush=True)
        sys.exit(2)
    args = parser.parse_intermixed_args(argv)  # flags such as -m may follow the overrides
    cfg = check_command_line(parser.prog, args, "train")
    if args.help:
        return print_help(args, "train")
    if args.cfg in ("job", "all") and cfg is not None:
        print(choices_header(cfg.hydra.runtime.choices), flush=True)
    run_hydra(args, parser, task, str(config_dir()), "train", composed_mode(cfg))
