"""``ganrun export``: a checkpoint's trained model as a shareable folder (safetensors + JSON).

The folder holds only the networks the task's sampler or translator needs (a generator: the
EMA copy when the run has one; both generators of a CycleGAN) as ``model.safetensors`` and
what rebuilding them needs in ``config.json``: the layout of Hugging Face's
``save_pretrained``, so that it can be pushed to a model hub unchanged.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ganrun.commands.keyvalue import run_command
from ganrun.errors import UserError
from ganrun.inference.names import CARD, CONFIG, PICTURE, WEIGHTS

PROG = "ganrun export"

HELP = f"""usage: ganrun export ckpt=<file> out=<folder> [key=value ...]

Writes what a checkpoint samples or translates with (a generator, its EMA weights when the
run has them; a translator's generators) as {WEIGHTS} and {CONFIG}, with a model card
({CARD} in Hugging Face's format: what it is, how it was trained, the metrics `ganrun eval`
recorded for the checkpoint; {PICTURE}: 16 samples of seed 0), for `ganrun sample`,
`ganrun translate`, `ganrun eval` and `ganrun.load_generator()`: an export works wherever a
checkpoint does.

keys:
  ckpt=FILE            checkpoint written by ganrun train (required)
  out=FOLDER           the export folder, created if needed (required)
  overwrite=false      replace an earlier export in `out` instead of refusing
  license=other        the model card's license (a Hugging Face license id, e.g. mit,
                       cc-by-4.0; "other" until its author chooses)
  trust_targets=[]     packages of your own whose classes the checkpoint may name, e.g.
                       trust_targets=[my_pkg] (docs/sharing.md: Files from others)

Example:
  ganrun export ckpt=outputs/2026-01-01/12-00-00/checkpoints/last.ckpt out=exports/dcgan
"""


@dataclass
class ExportConfig:
    ckpt: Optional[str] = None
    out: Optional[str] = None
    overwrite: bool = False
    license: str = "other"
    trust_targets: list[str] = field(default_factory=list)


def export(cfg: ExportConfig) -> Path:
    """Writes the export folder; returns its path."""
    from ganrun.inference import imagefiles
    from ganrun.inference.exports import write_export
    from ganrun.inference.loading import load
    from ganrun import __version__
    from ganrun.inference.model_card import training_command, write_card

    if not cfg.ckpt or not cfg.out:
        raise UserError(f"{PROG}: give both ckpt=<checkpoint file> and out=<folder>, e.g. "
                        "ckpt=outputs/<date>/<time>/checkpoints/last.ckpt out=exports/my_gan.")
    loaded = load(cfg.ckpt, "cpu", list(cfg.trust_targets))
    folder = run_folder(Path(cfg.ckpt).expanduser())
    # What the card says travels in config.json too, so that `ganrun eval` of the export can
    # write the card again with its new metrics.
    info = {"choices": loaded.choices, "iteration": loaded.iteration, "seed": loaded.seed,
            "dataset": loaded.dataset, "metrics": final_metrics(Path(cfg.ckpt)),
            "training_command": training_command(folder), "license": cfg.license,
            "ganrun_version": __version__}
    out = Path(cfg.out).expanduser()
    imagefiles.prepare_folder(out, [WEIGHTS, CONFIG, CARD, PICTURE], cfg.overwrite)
    write_export(loaded.model, info, out)
    write_card(loaded.model, info, out, folder)
    return out


def run_folder(ckpt: Path) -> Path | None:
    """The run folder of a checkpoint ganrun train wrote (``<run>/checkpoints/<file>``)."""
    folder = ckpt.resolve().parent.parent
    return folder if ckpt.is_file() and (folder / ".hydra").is_dir() else None


def final_metrics(ckpt: Path) -> dict:
    """What `ganrun eval` measured for this checkpoint file, as it is now."""
    from ganrun.metrics.record import read_metrics

    return read_metrics(ckpt)


def main(argv: list[str]) -> None:
    done = run_command(argv, ExportConfig, PROG, HELP, export)
    if done:
        names = [n for n in (WEIGHTS, CONFIG, CARD, PICTURE) if (done[1] / n).is_file()]
        print(f"Exported the generator to {done[1]}: {', '.join(names)}")
