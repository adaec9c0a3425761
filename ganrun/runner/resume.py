"""Where a run continues from: ``ckpt_path``, ``resume=true``, or its own run folder."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ganrun.files import refuse_links
from ganrun.study import check_trial_folder
from ganrun.runner import recorded
from ganrun.errors import UserError

LAST = Path("checkpoints") / "last.ckpt"


def checkpoint_to_resume(cfg: DictConfig) -> tuple[Path, dict] | tuple[None, None]:
    """The checkpoint this run continues from and its contents, or ``(None, None)``.

    A run folder that already holds ``last.ckpt`` is continued (re-running a command with the
    same ``hydra.run.dir``), unless ``resume=false``, which refuses rather than overwrite it.
    """
    own = Path(cfg.paths.output_dir) / LAST
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path)
    elif own.is_file() and cfg.resume is not False:
        path = own
    elif own.is_file():
        raise UserError(f"The run folder {own.parent.parent} already holds a checkpoint and "
                        "resume=false would overwrite it. Resume it (resume=true) or train in "
                        "another folder (another hydra.run.dir).")
    elif cfg.resume:
        raise UserError(f"resume=true, but there is no checkpoint to resume: {own} does not "
                        "exist. Point hydra.run.dir at the run folder to continue, or give "
                        "ckpt_path=<file>.")
    else:
        return None, None
    from ganrun.runner.checkpoints import read_checkpoint

    checkpoint = read_checkpoint(path)
    check_resumable(path, checkpoint, cfg)
    return path, checkpoint


# What a resumed run may change, and gets: the run length, the optimizers' hyperparameters
# (applied to the restored optimizers, see Runner.on_train_start), the schedule, the
# divergence policy, logging, metrics, callbacks, hardware and where the data and outputs are.
# Everything else (model, loss, task, batch size, image size, regularizers, EMA, n_critic, the
# optimizer's class, the seed) decides what the weights, optimizer states and data order mean.
CHANGEABLE = ("trainer.max_steps", "trainer.max_epochs", "trainer.deterministic",
              "trainer.compile", "trainer.compile_backend", "trainer.cuda_graphs",
              "trainer.cudnn_benchmark", "trainer.tf32", "trainer.channels_last",
              "trainer.keep_freed_memory",
              "optimizer", "scheduler", "divergence", "callbacks", "metrics", "logger",
              "hardware", "paths", "dataset.root", "dataset.download", "dataset.num_workers",
              "dataset.on_device", "ckpt_path", "resume", "optimized_metric", "hparams_search")
FIXED_INSIDE_CHANGEABLE = ("_target_",)  # an optimizer of another class cannot take the state


def check_resumable(path: Path, checkpoint: dict, cfg: DictConfig) -> None:
    """A ``UserError`` listing the settings that differ from the checkpoint's run and that a
    resumed run cannot honour (see ``CHANGEABLE``)."""
    from ganrun.runner.checkpoints import run_state

    saved = run_state(checkpoint, path).config
    now = OmegaConf.to_container(cfg, resolve=True)
    if now.get("seed") is None:
        now["seed"] = saved.get("seed")  # unset: the run's own seed is taken from the checkpoint
    fixed = [d for key, description in _differences(saved, now, "")
             if not changeable(key) for d in [description]]
    if fixed:
        shown = "; ".join(fixed[:6]) + (f"; and {len(fixed) - 6} more" if len(fixed) > 6 else "")
        raise UserError(
            f"Checkpoint {path} was trained with other settings that a resumed run cannot "
            f"change ({shown}): its weights, optimizer states and data order depend on them. "
            "Resume with the settings it was trained with, or start a new run (another "
            "hydra.run.dir, without resume/ckpt_path). A resume may change the run length "
            "(trainer.max_steps/max_epochs), the optimizers' hyperparameters (optimizer.lr, "
            "betas: applied), scheduler, divergence, callbacks, metrics, logger, hardware, "
            "paths and dataset.root/num_workers/download/on_device.")


def changeable(key: str) -> bool:
    parts = key.split(".")
    if parts[-1] in FIXED_INSIDE_CHANGEABLE:
        return False
    return any(key == allowed or key.startswith(allowed + ".") for allowed in CHANGEABLE)


def _differences(saved, now, prefix: str) -> list[tuple[str, str]]:
    """(key, description) of each leaf that differs; keys one side lacks (settings added or
    dropped by another ganrun version) are left out."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return [d for key in sorted(set(saved) & set(now))
                for d in _differences(saved[key], now[key], f"{prefix}.{key}" if prefix else key)]
    if saved == now:
        return []
    return [(prefix, f"{prefix} is {saved!r} in the checkpoint, {now!r} now")]


def resume_overrides(argv: list[str], outputs: Path = Path("outputs")) -> list[str]:
    """For ``resume=true``: the command line of the run being continued, updated by ``argv``.

    Without ``hydra.run.dir`` the newest run under ``outputs/`` that has a checkpoint is
    continued. Its saved overrides come first so that ``resume=true trainer.max_steps=N``
    composes the same config as the original run, with a new length. They are read as data
    (``ganrun.runner.recorded``): the folder may come from someone else.
    """
    named = _value(argv, "hydra.run.dir")
    if named and Path(named).is_dir():  # a run folder written again: maybe someone else's
        refuse_links(Path(named), "The run folder")
    if "resume=true" not in argv:
        return argv
    run_dir = named or _latest_run(outputs)
    if run_dir is None:
        return argv  # checkpoint_to_resume() explains that there is nothing to resume
    refuse_links(Path(run_dir), "The run folder")
    saved = recorded.overrides(Path(run_dir))
    check_trial_folder(Path(run_dir))
    given = {_key(a) for a in argv if _is_override(a)}
    merged = [o for o in saved if _key(o) not in given and _key(o) != "hydra.run.dir"]
    extra = [] if _value(argv, "hydra.run.dir") else [f"hydra.run.dir={run_dir}"]
    check_config_dir(Path(run_dir), argv)
    return merged + argv + extra


def check_config_dir(run_dir: Path, argv: list[str]) -> None:
    """A run trained with ``--config-dir DIR`` (its options, e.g. a task of your own, come from
    there) continues only when the command line names a config folder again: a folder named in
    a run folder's files is never used on their word."""
    if any(arg in ("--config-dir", "-cd") or arg.startswith("--config-dir=") for arg in argv):
        return
    folder = recorded.recorded_config_dir(run_dir)
    if folder:
        shown = " ".join(folder.split())[:200]
        raise UserError(f"The run in {run_dir} was trained with options from --config-dir "
                        f"{shown!r}. A config folder recorded in a run folder is never used on "
                        "its word (it could replace ganrun's own options): if it is yours and you "
                        "trust it, name it again: ganrun train resume=true "
                        f"hydra.run.dir={run_dir} --config-dir <that folder>.")


def _is_override(arg: str) -> bool:
    return "=" in arg and not arg.startswith("-")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value(argv: list[str], key: str) -> str | None:
    values = [a.split("=", 1)[1].strip("\"'") for a in argv if _is_override(a) and _key(a) == key]
    return values[-1] if values else None


def _latest_run(outputs: Path) -> str | None:
    runs = sorted(outputs.glob(f"*/*/{LAST}"), key=lambda p: p.stat().st_mtime)
    return str(runs[-1].parent.parent) if runs else None
