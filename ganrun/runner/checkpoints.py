"""Reading checkpoints safely, and the one accessor for what ganrun stores in them.

A checkpoint is data: it is read with ``torch.load(weights_only=True)``, which accepts tensors,
numbers, strings and plain containers and refuses to import or call anything, so a file from
someone else cannot run code when ganrun opens it. ganrun's own section (``checkpoint["ganrun"]``)
is read through ``RunState``, which checks its format version and its fields.
"""

import pickle
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganrun.errors import UserError

SECTION = "ganrun"
# The layout of the ganrun section and of the weights' names. 1: before tasks (no "format"
# field; G and D at the top of the module, "d_updates"); 2: tasks and phases ("task.nets.G",
# "counters"). Format 1 is migrated on reading.
FORMAT = 2
FORMAT_1_NAMES = {"generator.": "task.nets.G.", "discriminator.": "task.nets.D.",
                  "ema.": "task.ema.", "fixed_z": "task.fixed_z"}


@dataclass
class RunState:
    """ganrun's section of a checkpoint: where training stands and what it was trained with."""

    config: dict                         # the resolved run config
    data_shape: dict                     # channels, image_size, num_classes (class_names)
    iteration: int = 0                   # updates of the task's iteration phase so far
    counters: dict = field(default_factory=dict)  # batches, and updates per phase
    lr_scale: dict = field(default_factory=dict)  # per player, from divergence=rollback
    choices: dict = field(default_factory=dict)   # the config groups' options
    data_position: dict = field(default_factory=lambda: {"epoch": 0, "batches": 0})
    rng: dict | None = None              # every random generator's state (ganrun.runner.rng)
    # The metrics evaluated at this checkpoint's iteration ({"metrics/fid": 26.1}), so that a
    # run stopped right after its last evaluation keeps its result.
    metrics: dict = field(default_factory=dict)
    format: int = FORMAT

    def to_dict(self) -> dict:
        return asdict(self)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, or a ``UserError`` saying what is wrong with the file."""
    path = Path(path)
    checkpoint = safe_load(path, "Checkpoint")
    if not isinstance(checkpoint, dict) or SECTION not in checkpoint:
        raise UserError(f"'{path}' is not a ganrun checkpoint (it has no 'ganrun' section). "
                        "Give a checkpoint written by `ganrun train` (a .ckpt file under "
                        "outputs/<date>/<time>/checkpoints/), or an export folder of "
                        "`ganrun export`.")
    run_state(checkpoint, path)  # refuses a damaged or newer section before anything is built
    return checkpoint


def safe_load(path: Path, kind: str) -> Any:
    """``torch.load`` that never unpickles code: a ``UserError`` for a missing, damaged or
    code-carrying file."""
    if not path.is_file():
        raise UserError(f"{kind} '{path}' does not exist. Give the path of a .ckpt file, "
                        "e.g. outputs/<date>/<time>/checkpoints/last.ckpt.")
    if not zipfile.is_zipfile(path) and first_byte(path) == b"\x80":
        raise UserError(f"{kind} '{path}' was refused: it is a plain pickle file, not a "
                        "checkpoint (torch.save and ganrun write zip archives), and a pickle "
                        "can run code when read, so ganrun did not open it. Give a checkpoint "
                        "written by `ganrun train` (a .ckpt file) or an export folder.")
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols: not the user's fix
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err):
            name = str(err).split("GLOBAL", 1)[1].split()[0]
            raise UserError(f"{kind} '{path}' was refused: it tried to run code (it holds a "
                            f"pickled object that would call '{name}' when loaded). ganrun reads "
                            "checkpoints as data only and did not run it. Do not use this file; "
                            "ask its author for a checkpoint written by `ganrun train` or an "
                            "export of `ganrun export`.") from None
        reason = str(err).rsplit("error:", 1)[-1].split("Check the documentation")[0].strip()
        raise _unreadable(path, kind, reason or type(err).__name__) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise _unreadable(path, kind, f"{type(err).__name__}: {err}") from None


def first_byte(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(1)


def _unreadable(path: Path, kind: str, reason: str) -> UserError:
    reason = " ".join(reason.split())[:200]
    return UserError(f"{kind} '{path}' cannot be read ({reason}); it is truncated or not a "
                     "checkpoint. Use another one, such as an iter_<n>.ckpt from the same "
                     "checkpoints/ folder.")


def run_state(checkpoint: dict, source: str | Path = "The checkpoint") -> RunState:
    """ganrun's section of ``checkpoint``, checked: a ``UserError`` for a newer format or a
    missing or mistyped field."""
    section = checkpoint.get(SECTION)
    if not isinstance(section, dict):
        raise UserError(f"'{source}' is not a ganrun checkpoint (it has no 'ganrun' section).")
    version = section.get("format", 1)
    if not isinstance(version, int) or version > FORMAT:
        raise UserError(f"'{source}' was written by a newer ganrun (checkpoint format {version}; "
                        f"this ganrun reads format {FORMAT} and older). Upgrade ganrun "
                        "(pip install -U ganrun) to use it.")
    if version == 1:
        migrate_format_1(checkpoint)
        section = checkpoint[SECTION]
    expected = {"config": dict, "data_shape": dict, "iteration": int, "counters": dict,
                "lr_scale": dict, "choices": dict, "data_position": dict}
    values = {}
    for key, kind in expected.items():
        if key in section and not isinstance(section[key], kind):
            raise _bad_field(source, key, f"is a {type(section[key]).__name__}, not a "
                                          f"{kind.__name__}")
        if key in section:
            values[key] = section[key]
    for key in ("config", "data_shape"):
        if key not in values:
            raise _bad_field(source, key, "is missing")
    from ganrun.data.shape import check_data_shape

    check_data_shape(values["data_shape"], f"'{source}'")
    if not isinstance(values["config"].get("model"), dict):
        raise _bad_field(source, "config.model", "is missing")
    values["config"] = moved_targets(values["config"])
    metrics = section.get("metrics")
    metrics = {str(k): float(v) for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)} \
        if isinstance(metrics, dict) else {}
    return RunState(**values, rng=section.get("rng"), metrics=metrics, format=FORMAT)


# Classes ganrun moved since a checkpoint could have been written: old name -> new name.
MOVED = {"ganrun.divergence.": "ganrun.runner.divergence.",
         # logger=tensorboard built Lightning's logger itself before ganrun.loggers
         "pytorch_lightning.loggers.TensorBoardLogger": "ganrun.loggers.TensorBoard",
         **{f"ganrun.{name}.": f"ganrun.training.{name}." for name in (
             "augment", "ema", "image_pool", "losses", "optim", "regularizers", "schedules")}}


def moved_targets(node: Any) -> Any:
    """A stored config with the ``_target_``s of moved classes renamed (a copy)."""
    if isinstance(node, dict):
        copy = {key: moved_targets(value) for key, value in node.items()}
        target = copy.get("_target_")
        if isinstance(target, str):
            for old, new in MOVED.items():
                if target.startswith(old):
                    copy["_target_"] = new + target.removeprefix(old)
        return copy
    if isinstance(node, list):
        return [moved_targets(value) for value in node]
    return node


def migrate_format_1(checkpoint: dict) -> None:
    """A checkpoint of ganrun before tasks, in place: its counters and weight names as format 2
    has them. Lightning reads the same dict after ``on_load_checkpoint``, so resuming works."""
    section = checkpoint[SECTION]
    iteration = section.get("iteration", 0)
    d_updates = section.pop("d_updates", iteration)
    section["counters"] = {"batches": d_updates, "D": d_updates, "G": iteration}
    section["format"] = FORMAT
    weights = checkpoint.get("state_dict")
    if isinstance(weights, dict):
        checkpoint["state_dict"] = {_rename(key): value for key, value in weights.items()}


def _rename(key: str) -> str:
    for old, new in FORMAT_1_NAMES.items():
        if key.startswith(old):
            return new + key.removeprefix(old)
    return key


def _bad_field(source, key: str, problem: str) -> UserError:
    return UserError(f"'{source}' is not a usable ganrun checkpoint: its `{key}` {problem}. It "
                     "was not written by `ganrun train`, or it was edited. Use a checkpoint "
                     "written by `ganrun train`.")


NOT_BUILT = ("callbacks", "logger", "metrics", "hparams_search")


def stored_config(config: dict, source, trust=()):
    """A config read from a file, as a validated DictConfig: targets allow-listed first (so
    nothing the file names is imported before), then the same checks as the command line's."""
    from omegaconf import OmegaConf

    from ganrun.config import validate
    from ganrun.trust import check_data

    check_data(config, f"'{source}'", trust)
    # Only what is built from a file is validated: a checkpoint's callbacks, logger and metrics
    # settings (whose keys change between versions) are never instantiated from it.
    built = {key: value for key, value in config.items() if key not in NOT_BUILT}
    try:
        return validate(OmegaConf.create(built))
    except UserError as err:
        raise UserError(f"The config stored in '{source}' is not valid: {err}") from None
