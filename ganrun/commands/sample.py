"""``ganrun sample``: generated images of a trained model, as PNG files, one .npz or one grid.

Whatever the task, the images come from its sampler (``ganrun.inference.model.Sampler``: the
EMA generator when the run has one, in eval mode), with latents drawn from ``seed``: the same
checkpoint, seed and num give identical files, whatever batch_size or device. A model adds its
own keys (class labels, truncation, StyleGAN2's style options, text...):
``ganrun sample ckpt=FILE --help`` lists them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ganrun.commands.keyvalue import parse
from ganrun.errors import UserError
from ganrun.progress import track

if TYPE_CHECKING:
    import torch

PROG = "ganrun sample"
MANY_FILES = 1000  # PNG files written with a progress display (fewer take a few seconds)

HELP = """usage: ganrun sample ckpt=<file> [key=value ...]

Writes generated samples of a trained GAN (its EMA generator when it has one).

keys:
  ckpt=PATH         checkpoint written by ganrun train, or an export folder of
                    ganrun export (required)
  num=64            number of samples (rows of the grid with interpolate=true)
  out=generated     output folder, created if needed
  format=png        png: one PNG per sample (sample_000000.png, ...);
                    npz: samples.npz with `images` uint8 (N, H, W, C) (and `points` float32
                         (N, C) in data units for point data sets such as dataset=ring);
                    grid: one grid.png
  seed=0            the same seed gives identical files; sample i never depends on num or
                    batch_size
  batch_size=256    samples generated at once
  device=auto       auto (a GPU when there is one), cpu, cuda, cuda:1, ...
  interpolate=false true: interpolation.png, each row a path between two random latents
                    (in W, a straight line, for a style-based generator: StyleGAN2)
  steps=8           images per interpolation row
  slerp=true        spherical (true) or linear (false) interpolation (z space)
  nrow=null         images per grid row (default: a square grid); with mix=true the
                    number of column sources (default: num)
  overwrite=false   replace files of an earlier run in `out` instead of refusing
  trust_targets=[]  packages of your own whose classes the checkpoint may name, e.g.
                    [my_pkg] (docs/sharing.md: Files from others)

The model's own keys (`ganrun sample ckpt=FILE --help` lists those of that model):
  label=null, truncation=null       every generator of latents (class, truncation trick)
  truncation_cutoff, noise_mode, mix, mix_layers   style-based generators (StyleGAN2)

Examples:
  ganrun sample ckpt=outputs/2026-01-01/12-00-00/checkpoints/last.ckpt num=1000 out=fake
  ganrun sample ckpt=last.ckpt num=64 format=grid seed=1
  ganrun sample ckpt=last.ckpt num=8 interpolate=true steps=10
  ganrun sample ckpt=last.ckpt num=64 format=grid truncation=0.7 truncation_cutoff=8
  ganrun sample ckpt=last.ckpt num=4 nrow=6 mix=true mix_layers=0-3
"""


@dataclass
class SampleConfig:
    ckpt: Optional[str] = None
    num: int = 64
    out: str = "generated"
    format: str = "png"
    seed: int = 0
    batch_size: int = 256
    device: str = "auto"
    interpolate: bool = False
    steps: int = 8
    slerp: bool = True
    nrow: Optional[int] = None
    overwrite: bool = False
    trust_targets: list[str] = field(default_factory=list)


FORMATS = ("png", "npz", "grid")
CONFLICT = (f"{PROG}: interpolate=true and this model's grid option each write their own grid. "
            "Pick one.")


def check(cfg: SampleConfig) -> None:
    if not cfg.ckpt:
        raise UserError(f"{PROG}: no checkpoint given. Add ckpt=<file>, e.g. "
                        "ckpt=outputs/<date>/<time>/checkpoints/last.ckpt.")
    for key, low in (("num", 1), ("batch_size", 1), ("steps", 2)):
        if getattr(cfg, key) < low:
            raise UserError(f"{PROG}: {key} must be at least {low}, got {getattr(cfg, key)}.")
    for key, high in (("batch_size", 65536), ("steps", 1024)):
        if getattr(cfg, key) > high:
            raise UserError(f"{PROG}: {key} must be at most {high}, got {getattr(cfg, key)}.")
    if not 0 <= cfg.seed < 2**32:
        raise UserError(f"{PROG}: seed must be an integer from 0 to {2**32 - 1}, got {cfg.seed}.")
    if cfg.nrow is not None and cfg.nrow < 1:
        raise UserError(f"{PROG}: nrow must be at least 1, got {cfg.nrow}.")
    if cfg.format not in FORMATS:
        raise UserError(f"{PROG}: unknown format '{cfg.format}'. Use format=png (one file per "
                        "sample), format=npz (one array file) or format=grid (one image).")


def model_options(sampler, arguments: list[str]):
    """The sampler's own keys from the arguments ganrun sample itself does not take."""
    common = tuple(f.name for f in dataclasses.fields(SampleConfig))
    from omegaconf import OmegaConf

    options = OmegaConf.to_object(parse(arguments, sampler.Options, PROG,
                                        valid_elsewhere=common,
                                        what=f" (this model is {sampler.kind})"))
    sampler.check(options)
    return options


def model_help(sampler) -> str:
    lines = [f"This model is {sampler.kind}. Its own sampling keys:"]
    for option in dataclasses.fields(sampler.Options):
        default = "null" if option.default is None else str(option.default).lower() \
            if isinstance(option.default, bool) else option.default
        lines.append(f"  {f'{option.name}={default}':<20}  {option.metadata.get('help', '')}")
    return "\n".join(lines)


def sample(cfg, arguments: list[str]) -> list[str]:
    """Writes the samples that ``cfg`` (and the model's own keys in ``arguments``) ask for;
    returns the names of the files written."""
    from ganrun.inference.loading import load_sampler  # imports torch models: after the checks
    from ganrun.runner.devices import pick_device

    check(cfg)
    sampler, _ = load_sampler(cfg.ckpt, pick_device(cfg.device), list(cfg.trust_targets))
    options = model_options(sampler, arguments)
    cfg.num = sampler.count(cfg.num, options)
    out = Path(cfg.out).expanduser()
    check_room(sampler, cfg, out)
    grid = sampler.special_grid(cfg.num, cfg.nrow, cfg.seed, options)
    if grid is not None or cfg.interpolate:
        if cfg.format == "npz":
            raise UserError(f"{PROG}: {'interpolate=true' if cfg.interpolate else 'this grid'} "
                            "writes one PNG grid, not an .npz. Drop format=npz.")
    if grid is None and (cfg.interpolate or cfg.format == "grid"):
        grid = grid_images(sampler, cfg.num, cfg.seed, options, cfg.nrow, cfg.interpolate,
                           cfg.steps, cfg.slerp, cfg.batch_size)
    elif grid is not None and cfg.interpolate:
        raise UserError(CONFLICT)
    if grid is not None:
        name, images, nrow = grid
        return write_grid(sampler, cfg, out, images, name, nrow)
    if cfg.format == "npz":
        return write_npz(sampler, cfg, out, options)
    return write_pngs(sampler, cfg, out, options)


def check_room(sampler, cfg, out: Path) -> None:
    """What the samples need, before the first is made: an .npz or a grid is built in memory
    (checked against this machine's RAM), PNG files on disk (against the free space)."""
    import shutil

    from ganrun.runner.memory import device_memory, gb

    shape = sampler.data_shape
    pixels = int(shape.get("channels") or 3) * int(shape.get("image_size") or 1) ** 2
    images = cfg.num * (cfg.steps if cfg.interpolate else 1)
    if cfg.format in ("npz", "grid") or cfg.interpolate:
        need = images * pixels * (1 if cfg.format == "npz" else 5)  # uint8, or floats + uint8
        ram, _ = device_memory("cpu")
        if ram and need > ram:
            raise UserError(f"{PROG}: {images:,} images of {pixels:,} values are built in memory "
                            f"for format={cfg.format} ({gb(need)}), more than this machine's "
                            f"memory ({gb(ram)}). Ask for fewer (num=) or use format=png, one "
                            "file per sample.")
        return
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free if probe.exists() else None
    if free is not None and images * pixels > free:
        raise UserError(f"{PROG}: {images:,} PNG files of up to {pixels:,} bytes each need up "
                        f"to {gb(images * pixels)}, more than the {gb(free)} free where {out} "
                        "lies. Ask for fewer (num=) or write elsewhere (out=).")


def grid_images(sampler, num: int, seed: int, options, nrow: int | None = None,
                interpolate: bool = False, steps: int = 8, slerp: bool = True,
                batch_size: int = 256) -> tuple[str, torch.Tensor, int]:
    """(file name, images, images per row) of one grid: the model's own (style mixing), an
    interpolation (``num`` strips of ``steps``), or ``num`` samples (also ``ganrun demo``'s)."""
    import torch

    from ganrun.inference.model import square_nrow
    grid = sampler.special_grid(num, nrow, seed, options)
    if grid is not None and interpolate:
        raise UserError(CONFLICT)
    if grid is not None:
        return grid
    if interpolate:
        return ("interpolation.png",
                sampler.interpolation(num, steps, seed, slerp, options), steps)
    images = torch.cat([part for _, part in sampler.samples(num, seed, options, batch_size)])
    return "grid.png", images, nrow or square_nrow(num)


def write_pngs(sampler, cfg, out: Path, options) -> list[str]:
    from ganrun.inference import imagefiles

    width = max(6, len(str(cfg.num - 1)))
    names = sampler.file_names(cfg.num, options) or \
        [f"sample_{i:0{width}d}.png" for i in range(cfg.num)]
    rows = sampler.condition_rows(sampler.conditions(cfg.num, options))
    extra = [sampler.conditions_file] if rows is not None else []
    imagefiles.check_png_channels(sampler.data_shape["channels"])
    imagefiles.prepare_folder(out, names + extra, cfg.overwrite)
    with track("Samples", cfg.num, "img", hint="num", min_total=MANY_FILES) as bar:
        for start, images in sampler.samples(cfg.num, cfg.seed, options, cfg.batch_size):
            for offset, pixels in enumerate(imagefiles.to_uint8(images)):
                imagefiles.write_png(out / names[start + offset], pixels)
            bar.advance(len(images))
    if rows is not None:
        imagefiles.write_labels_csv(out / sampler.conditions_file, names, rows,
                                    sampler.conditions_column)
    return names + extra


def write_npz(sampler, cfg, out: Path, options) -> list[str]:
    import torch

    from ganrun.inference import imagefiles

    imagefiles.prepare_folder(out, ["samples.npz"], cfg.overwrite)
    samples = torch.cat([images for _, images in sampler.samples(cfg.num, cfg.seed, options,
                                                                 cfg.batch_size)])
    arrays = {"images": imagefiles.to_uint8(samples).permute(0, 2, 3, 1).numpy()}
    if samples.shape[-2:] == (1, 1):  # point data: uint8 would round the coordinates away
        arrays["points"] = samples.flatten(1).numpy()
    conditions = sampler.conditions(cfg.num, options)
    if isinstance(conditions, torch.Tensor) and conditions.dtype == torch.long:
        arrays["labels"] = conditions.numpy()
    imagefiles.write_npz(out / "samples.npz", arrays)
    return ["samples.npz"]


def write_grid(sampler, cfg, out: Path, images, name: str, nrow: int) -> list[str]:
    from ganrun.inference import imagefiles

    imagefiles.check_png_channels(sampler.data_shape["channels"])
    imagefiles.prepare_folder(out, [name], cfg.overwrite)
    imagefiles.write_grid(out / name, imagefiles.to_uint8(images), nrow)
    return [name]


def main(argv: list[str]) -> None:
    import os
    import sys

    try:
        cfg, model_arguments = parse(argv, SampleConfig, PROG, extra=True) \
            if not any(arg in ("-h", "--help") for arg in argv) else (None, [])
        if cfg is None:
            print(help_text([a for a in argv if a not in ("-h", "--help")]))
            return
        written = sample(cfg, model_arguments)
    except UserError as err:
        if os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"{PROG}: error: {str(err).removeprefix(PROG + ': ')}", file=sys.stderr, flush=True)
        sys.exit(2)
    shown = written[0] if len(written) == 1 else f"{written[0]} ... {written[-1]}"
    print(f"Wrote {len(written)} file(s) to {Path(cfg.out).expanduser()}: {shown}")


def help_text(argv: list[str]) -> str:
    """The help; with ckpt= given, followed by that model's own keys."""
    cfg, _ = parse(argv, SampleConfig, PROG, extra=True)
    if not cfg.ckpt:
        return HELP
    from ganrun.inference.loading import load_sampler

    sampler, _ = load_sampler(cfg.ckpt, "cpu", list(cfg.trust_targets))
    return HELP + "\n" + model_help(sampler)
