"""Where a run continues from: ``ckpt_path``, ``resume=true``, or its own run folder."""

from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from ganrun.runner.checkpoints import read_checkpoint, run_state
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
    checkpoint = read_checkpoint(path)
    check_same_model(path, checkpoint, cfg)
    return path, checkpoint


def check_same_model(path: Path, checkpoint: dict, cfg: DictConfig) -> None:
    saved = run_state(checkpoint, path).config.get("model", {})
    differences = _differences(saved, OmegaConf.to_container(cfg.model, resolve=True), "model")
    if differences:
        raise UserError(f"Checkpoint {path} was trained with another model config ("
                        f"{'; '.join(differences)}), so its weights do not fit. Resume with the "
                        "model settings it was trained with, or start a new run.")


def _differences(saved, now, prefix: str) -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        return [d for key in sorted(set(saved) | set(now))
                for d in _differences(saved.get(key), now.get(key), f"{prefix}.{key}")]
    return [] if saved == now else [f"{prefix} is {saved!r} in the checkpoint, {now!r} now"]


def resume_overrides(argv: list[str], outputs: Path = Path("outputs")) -> list[str]:
    """For ``resume=true``: the command line of the run being continued, updated by ``argv``.

    Without ``hydra.run.dir`` the newest run under ``outputs/`` that has a checkpoint is
    continued. Its saved overrides come first so that ``resume=true trainer.max_steps=N``
    composes the same config as the original run, with a new length.
    """
    if "resume=true" not in argv:
        return argv
    run_dir = _value(argv, "hydra.run.dir") or _latest_run(outputs)
    if run_dir is None:
        return argv  # checkpoint_to_resume() explains that there is nothing to resume
    saved_file = Path(run_dir) / ".hydra" / "overrides.yaml"
    saved = yaml.safe_load(saved_file.read_text()) if saved_file.is_file() else []
    given = {_key(a) for a in argv if _is_override(a)}
    merged = [o for o in saved if _key(o) not in given and _key(o) != "hydra.run.dir"]
    extra = [] if _value(argv, "hydra.run.dir") else [f"hydra.run.dir={run_dir}"]
    return merged + argv + extra


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
