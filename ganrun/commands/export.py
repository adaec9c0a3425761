"""``ganrun export``: a checkpoint's generator as a shareable folder (safetensors + JSON).

The folder holds only the generator that samples come from (the EMA copy when the run has
one) as ``model.safetensors`` and what rebuilding it needs in ``config.json``: the layout of
Hugging Face's ``save_pretrained``, so that it can be pushed to a model hub unchanged.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ganrun import __version__, imagefiles
from ganrun.errors import UserError
from ganrun.commands.keyvalue import run_command
from ganrun.loading import CONFIG, EXPORT_FORMAT, TRANSLATOR_NETS, WEIGHTS

PROG = "ganrun export"

HELP = f"""usage: ganrun export ckpt=<file> out=<folder> [key=value ...]

Writes a checkpoint's generator (its EMA weights when the run has them) as {WEIGHTS} and
{CONFIG}, for `ganrun sample`, `ganrun eval` and `ganrun.load_generator()`.

keys:
  ckpt=FILE            checkpoint written by ganrun train (required)
  out=FOLDER           the export folder, created if needed (required)
  overwrite=false      replace an earlier export in `out` instead of refusing
  trust_targets=[]     module prefixes of your own networks that the checkpoint may name,
                       e.g. trust_targets=[my_pkg.nets] (see README: Loading files from others)

Example:
  ganrun export ckpt=outputs/2026-01-01/12-00-00/checkpoints/last.ckpt out=exports/dcgan
"""


@dataclass
class ExportConfig:
    ckpt: Optional[str] = None
    out: Optional[str] = None
    overwrite: bool = False
    trust_targets: list[str] = field(default_factory=list)


def export(cfg: ExportConfig) -> Path:
    """Writes the export folder; returns its path."""
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    from ganrun.runner.checkpoints import load_gan, read_checkpoint, run_state

    if not cfg.ckpt or not cfg.out:
        raise UserError(f"{PROG}: give both ckpt=<checkpoint file> and out=<folder>, e.g. "
                        "ckpt=outputs/<date>/<time>/checkpoints/last.ckpt out=exports/my_gan.")
    module, run_cfg = load_gan(cfg.ckpt, "cpu", list(cfg.trust_targets))
    state = run_state(read_checkpoint(cfg.ckpt), cfg.ckpt)
    resolved = OmegaConf.to_container(run_cfg, resolve=True)
    config = {
        "ganrun_export": EXPORT_FORMAT, "ganrun_version": __version__,
        "generator": resolved["model"]["generator"], "data_shape": module.data_shape,
        "class_names": module.data_shape.get("class_names"), "choices": state.choices,
        "iteration": state.iteration, "seed": resolved.get("seed"),
        "dataset": resolved["dataset"], "metrics": final_metrics(Path(cfg.ckpt)),
    }
    if hasattr(module.task, "test_pairs"):
        raise UserError(f"'{cfg.ckpt}' is a paired translator (task=pix2pix), which ganrun "
                        "export does not export yet. Use the checkpoint itself with `ganrun "
                        "translate` and `ganrun eval`.")
    if hasattr(module.task, "translate"):
        config["task"], weights = "cyclegan", translator_part(module, config)
    else:
        config["task"], weights = "generation", generator_part(module, run_cfg, config)
    out = Path(cfg.out).expanduser()
    imagefiles.prepare_folder(out, [WEIGHTS, CONFIG], cfg.overwrite)
    weights = {k: v.detach().contiguous() for k, v in weights.items()}
    save_file(weights, str(out / WEIGHTS), metadata={"format": "pt"})
    readable_as_created(out / WEIGHTS)
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return out


def readable_as_created(path: Path) -> None:
    """The permissions a new file gets from the umask (0644 by default): safetensors writes
    through a private temporary file (0600), which would keep a folder meant for sharing
    unreadable to others."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def generator_part(module, run_cfg, config: dict) -> dict:
    """The sampling generator's weights (its EMA copy when there is one); its arguments go
    into ``config``."""
    from ganrun.runner.build import conditioning

    shape, task = module.data_shape, module.task
    size = {"channels": shape["channels"], "image_size": shape["image_size"]}
    config.update(generator_kwargs={"latent_dim": task.latent_dim, **size,
                                    **conditioning(run_cfg, shape)[0]},
                  latent_dim=task.latent_dim, ema=task.ema is not None)
    return task.sampling_generator.state_dict()


def translator_part(module, config: dict) -> dict:
    """Both generators of a translator, as ``G_AB.*`` and ``G_BA.*``; their channels go into
    ``config``."""
    nets, shape = module.task.nets, module.data_shape
    a, b = shape["channels_a"], shape["channels_b"]
    config["generator_kwargs"] = {"G_AB": {"in_channels": a, "out_channels": b},
                                  "G_BA": {"in_channels": b, "out_channels": a}}
    return {f"{name}.{key}": value for name in TRANSLATOR_NETS
            for key, value in nets[name].state_dict().items()}


def final_metrics(ckpt: Path) -> dict:
    """What `ganrun eval` measured for this checkpoint file, as it is now."""
    from ganrun.metrics.record import read_metrics

    return read_metrics(ckpt)


def main(argv: list[str]) -> None:
    done = run_command(argv, ExportConfig, PROG, HELP, export)
    if done:
        print(f"Exported the generator to {done[1]}: {WEIGHTS}, {CONFIG}")
