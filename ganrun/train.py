"""``ganrun train``: compose the config groups, build the objects, fit."""

import logging
import os
import sys
import warnings

import pytorch_lightning as pl
from hydra._internal.utils import _run_hydra, get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from ganrun.build import build_module, data_shape
from ganrun.checkpoints import read_checkpoint
from ganrun.config import config_dir, validate
from ganrun.errors import UserError

log = logging.getLogger("ganrun")


def train(cfg: DictConfig) -> None:
    _quiet_library_noise()
    cfg = validate(cfg)
    cfg.seed = pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.ckpt_path:
        read_checkpoint(cfg.ckpt_path)  # fail early, with a clear message, on a bad file
    # Saved configs hold absolute data paths, so that `ganrun eval` works from any folder.
    cfg.dataset.root = to_absolute_path(cfg.dataset.root)
    datamodule = instantiate(cfg.dataset)
    choices = {group: option for group, option in HydraConfig.get().runtime.choices.items()
               if not group.startswith("hydra")}
    module = build_module(cfg, data_shape(datamodule), choices)
    trainer = build_trainer(cfg)
    log.info("Run folder: %s", cfg.paths.output_dir)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    hw = cfg.hardware
    trainer = pl.Trainer(
        accelerator=hw.accelerator, devices=hw.devices, num_nodes=hw.num_nodes,
        strategy=instantiate(hw.strategy) if isinstance(hw.strategy, DictConfig) else hw.strategy,
        precision=hw.precision,
        # The run length is counted in iterations by the module, not in optimizer steps.
        max_steps=-1, max_epochs=cfg.trainer.max_epochs or -1,
        deterministic=cfg.trainer.deterministic,
        logger=instantiate(cfg.logger) if cfg.logger else False,
        callbacks=callbacks,
        enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        num_sanity_val_steps=0,
        default_root_dir=cfg.paths.output_dir,
    )
    _refuse_relaunching_sweeps(trainer)
    return trainer


def _quiet_library_noise() -> None:
    # Messages that say nothing about the run; everything else is left visible.
    for message in ("`broadcast_buffers` is deprecated", ".*LeafSpec.* is deprecated"):
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage())


def _refuse_relaunching_sweeps(trainer: pl.Trainer) -> None:
    # Lightning's DDP launcher re-runs the command line in each rank, which under -m would
    # re-run the whole sweep (Lightning #15737, Hydra #2070).
    if HydraConfig.get().mode == RunMode.MULTIRUN and trainer.world_size > 1 and \
            isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher):
        raise UserError("Multi-process DDP cannot run inside a -m/--multirun sweep: each rank "
                        "would re-launch the whole sweep. Run sweeps with one device per job "
                        "(hardware=gpu or hardware=cpu), or train DDP runs one at a time.")


def task(cfg: DictConfig) -> None:
    """The Hydra task: a ``UserError`` becomes one clear message and a non-zero exit."""
    try:
        return train(cfg)
    except Exception as exc:
        err = _user_error(exc)
        if err is None or os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"ganrun train: error: {err}", file=sys.stderr, flush=True)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra records the failed job and the sweep goes on with the others
        sys.exit(2)


def _user_error(exc: BaseException | None) -> UserError | None:
    """The UserError behind an exception, also when Hydra's instantiate wrapped it."""
    while exc is not None and not isinstance(exc, UserError):
        exc = exc.__cause__ or exc.__context__
    return exc


def main(argv: list[str]) -> None:
    # Parse the overrides ourselves so that sys.argv keeps `train`: Lightning's DDP launcher
    # re-runs sys.argv in every rank.
    parser = get_args_parser()
    parser.prog = "ganrun train"
    args = parser.parse_intermixed_args(argv)  # flags such as -m may follow the overrides
    _run_hydra(args=args, args_parser=parser, task_function=task,
               config_path=str(config_dir()), config_name="train")
