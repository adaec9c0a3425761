"""One training run from a composed config: build the data, the task's module and the trainer,
then fit (resuming where the run folder or ``ckpt_path`` says). ``ganrun train`` (the command,
``ganrun.commands.train``) calls ``train`` as its Hydra task; this module holds everything that
needs torch and Lightning, so that the command's start-up (``--help``, a typo) stays light."""

import logging
import signal
import sys

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from ganrun.callbacks.signals import signals_before_training, stop_signal
from ganrun.choices import of_user
from ganrun.config import validate
from ganrun.errors import UserError
from ganrun.private_apis import relaunches_the_script
from ganrun.runner.acceleration import accelerate, set_fp32_math
from ganrun.runner.allocator import keep_freed_memory
from ganrun.runner.build import build_module, data_shape
from ganrun.runner.checkpoints import run_state
from ganrun.runner.devices import check_devices
from ganrun.runner.memory import check_training_memory
from ganrun.runner.resume import checkpoint_to_resume
from ganrun.runner.seed import record_seed, run_seed
from ganrun.commands.hydra_app import quiet_library_noise

log = logging.getLogger("ganrun")

def train(cfg: DictConfig) -> tuple[float | None, str]:
    """Trains; returns the final ``cfg.optimized_metric`` (a study's objective; None if the run
    never logged it) and how the run ended: ``finished``, or the status of the callback that
    stopped it early (``pruned``)."""
    with signals_before_training():
        return _train(cfg)


def _train(cfg: DictConfig) -> tuple[float | None, str]:
    quiet_library_noise()
    cfg = validate(cfg)
    if cfg.hparams_search:
        raise UserError("hparams_search=... describes a study for `ganrun tune`, which runs its "
                        "trials with `ganrun train`: run `ganrun tune hparams_search=<search> "
                        "<overrides>` (ganrun tune --help), or drop hparams_search to train once.")
    check_devices(cfg.hardware)
    if cfg.trainer.keep_freed_memory:
        keep_freed_memory()
    ckpt_path, checkpoint = checkpoint_to_resume(cfg)
    state = run_state(checkpoint, ckpt_path) if checkpoint else None
    cfg.seed = use_seed(cfg, state.config.get("seed") if state else None)
    # Saved configs hold absolute data paths, so that `ganrun eval` works from any folder.
    cfg.dataset.root = to_absolute_path(cfg.dataset.root)
    datamodule = instantiate(cfg.dataset)
    choices = of_user(HydraConfig.get().runtime.choices)
    shape = data_shape(datamodule)
    check_training_memory(lambda: build_module(cfg, shape, choices), shape,
                          cfg.dataset.batch_size, cfg.hardware.accelerator)
    module = build_module(cfg, shape, choices)
    check_metrics(cfg, module.task)
    module.task.prepare(datamodule)
    start = 0
    if state:
        start = state.iteration
        if cfg.trainer.max_steps and start >= cfg.trainer.max_steps:
            done = finished_run(cfg, state, ckpt_path)
            if done is not None:
                return done
        datamodule.resume_at(**state.data_position)
        log.info("Resuming from %s at iteration %d", ckpt_path, start)
    print(f"Building the trainer ({describe_hardware(cfg)})", file=sys.stderr, flush=True)
    trainer = build_trainer(cfg, start)
    log.info("Networks: %s", ", ".join(
        f"{name} {sum(p.numel() for p in net.parameters()):,} parameters"
        for name, net in module.task.nets.items()))
    acceleration = accelerate(
        module, channels_last=cfg.trainer.channels_last, compile=cfg.trainer.compile,
        cuda_graphs=cfg.trainer.cuda_graphs, backend=cfg.trainer.compile_backend,
        cuda=trainer.strategy.root_device.type == "cuda",
        drop_last=bool(getattr(datamodule, "drop_last", True)), distributed=trainer.world_size > 1)
    acceleration.math = set_fp32_math(cfg.trainer.tf32, cfg.trainer.cudnn_benchmark and
                                      not cfg.trainer.deterministic)
    log.info("Run folder: %s", cfg.paths.output_dir)
    # weights_only: Lightning reads the file again; it must not unpickle code either.
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    if trainer.is_global_zero:
        acceleration.write(cfg.paths.output_dir)  # what compiled, what fell back, fp32 math
    signum = stop_signal(trainer)
    if signum is not None:
        name = signal.Signals(signum).name
        if module.iteration == start == 0:
            print(f"ganrun train: stopped by {name} before training started; nothing to save.",
                  file=sys.stderr, flush=True)
        else:
            message = (f"ganrun train: stopped by {name} at iteration {module.iteration}; "
                       f"checkpoint saved. {how_to_continue(cfg.paths.output_dir)}")
            print(message, file=sys.stderr, flush=True)
            log.info("%s", message.removeprefix("ganrun train: "))  # train.log says it too
        sys.exit(128 + signum)
    early = next((c for c in trainer.callbacks if getattr(c, "stopped", None)), None)
    if trainer.is_global_zero and module.iteration > start:
        log.info("Training finished: %s", early.stopped if early else module.stop_reason())
    return objective(trainer, module, cfg.optimized_metric), early.status if early else "finished"


def how_to_continue(folder) -> str:
    """A trial of a study continues with its study's command; a run on its own with resume."""
    from pathlib import Path

    from ganrun.study import TRIAL_FILE

    if (Path(folder) / TRIAL_FILE).is_file():
        return ("It is a trial of a study: run the same `ganrun tune` command again to "
                "continue the study (it resumes this trial).")
    return f"Continue with: ganrun train resume=true hydra.run.dir={folder}"


def finished_run(cfg: DictConfig, state, ckpt_path) -> tuple[float | None, str] | None:
    """A run resumed at its end: its result as its checkpoint recorded it, or None when the
    metrics its config asks for were not measured at that iteration (a stop during the last
    evaluation): then training is resumed to evaluate them, and updates nothing."""
    key = cfg.optimized_metric
    wanted = bool(cfg.metrics.get("evaluate")) and key and key.startswith("metrics/")
    if wanted and key not in state.metrics:
        log.info("The run at %s reached iteration %d (trainer.max_steps=%d), but its last "
                 "evaluation was not finished: measuring it now.", ckpt_path, state.iteration,
                 cfg.trainer.max_steps)
        return None
    log.info("The run at %s already reached iteration %d (trainer.max_steps=%d): nothing to "
             "train. To train longer: ganrun train resume=true hydra.run.dir=%s "
             "trainer.max_steps=<more>", ckpt_path, state.iteration, cfg.trainer.max_steps,
             cfg.paths.output_dir)
    return state.metrics.get(key), "finished"


def describe_hardware(cfg: DictConfig) -> str:
    import torch

    hw = cfg.hardware
    gpus = torch.cuda.device_count()
    where = f"{gpus} GPU(s) available" if gpus else "no GPU: CPU"
    return f"hardware: {hw.accelerator}, devices {hw.devices}, precision {hw.precision}; {where}"


def check_metrics(cfg: DictConfig, task) -> None:
    """A metric that does not measure this task's model fails now, not at its first
    evaluation thousands of iterations later."""
    model = task.inference()
    for metric in instantiate(cfg.metrics.get("evaluate") or {}).values():
        metric.check_model(model)


def use_seed(cfg: DictConfig, saved: int | None) -> int:
    """The run's seed (``saved``: a resumed run's), applied, recorded and printed."""
    seed, origin = run_seed(cfg.seed, saved)
    pl.seed_everything(seed, workers=True, verbose=False)
    if rank_zero_only.rank == 0:
        record_seed(cfg.paths.output_dir, seed)
        repeat = f" (drawn; seed={seed} repeats this run)" if origin == "drawn" else \
            " (from the checkpoint)" if origin == "checkpoint" else ""
        log.info("Seed: %d%s", seed, repeat)
    return seed


def objective(trainer: pl.Trainer, module, key: str | None) -> float | None:
    """The last value of ``key``: a metric (metrics/fid) or a training scalar (loss/g)."""
    if not key:
        return None
    value = trainer.callback_metrics.get(key, module.stats.get(key))
    return None if value is None else float(value)


def build_trainer(cfg: DictConfig, start_iteration: int = 0) -> pl.Trainer:
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    hw = cfg.hardware
    trainer = pl.Trainer(
        accelerator=hw.accelerator, devices=hw.devices, num_nodes=hw.num_nodes,
        strategy=instantiate(hw.strategy) if isinstance(hw.strategy, DictConfig) else hw.strategy,
        precision=hw.precision,
        # The run length is counted in iterations by the module, not in optimizer steps.
        max_steps=-1, max_epochs=cfg.trainer.max_epochs or -1,
        deterministic=cfg.trainer.deterministic,
        # cuDNN's autotuning picks other kernels run to run: not with deterministic=true.
        benchmark=cfg.trainer.cudnn_benchmark and not cfg.trainer.deterministic,
        logger=build_logger(cfg, start_iteration),
        callbacks=callbacks,
        enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        num_sanity_val_steps=0,
        enable_model_summary=False,  # ganrun prints one line of parameter counts instead
        log_every_n_steps=1,  # nothing goes through self.log; silences a warning
        default_root_dir=cfg.paths.output_dir,
    )
    _refuse_relaunching_sweeps(trainer)
    return trainer


def build_logger(cfg: DictConfig, start_iteration: int) -> list | bool:
    """The trackers of ``logger=`` (one, or a list such as ``logger=[tensorboard,mlflow]``).
    A run logged only to remote trackers also keeps ``csv/metrics.csv`` in its folder: every
    point stays there if a tracker goes down, and ``ganrun report`` reads it."""
    from ganrun.loggers import CSV, TensorBoard

    if not cfg.logger:
        return False
    # One node with a _target_: a config written when logger= took a single option.
    nodes = [cfg.logger] if "_target_" in cfg.logger else list(cfg.logger.values())
    loggers = [instantiate(node, **({"resumed_at": start_iteration}
                                    if str(node._target_).startswith("ganrun.loggers.") else {}))
               for node in nodes if node]
    if loggers and not any(isinstance(lg, (CSV, TensorBoard)) for lg in loggers):
        loggers.append(CSV(cfg.paths.output_dir, resumed_at=start_iteration))
        log.info("The run folder also keeps csv/metrics.csv (every point, also if a tracker "
                 "goes down; ganrun report reads it).")
    return loggers


def _refuse_relaunching_sweeps(trainer: pl.Trainer) -> None:
    # Lightning's DDP launcher re-runs the command line in each rank, which under -m would
    # re-run the whole sweep (Lightning #15737, Hydra #2070).
    if HydraConfig.get().mode == RunMode.MULTIRUN and trainer.world_size > 1 and \
            relaunches_the_script(trainer.strategy):
        raise UserError("Multi-process DDP cannot run inside a -m/--multirun sweep: each rank "
                        "would re-launch the whole sweep. Run sweeps with one device per job "
                        "(hardware=gpu or hardware=cpu), or train DDP runs one at a time.")
