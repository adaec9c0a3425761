"""``ganrun sample``: generated images from a checkpoint, as PNG files, one .npz or one grid.

The samples come from ``module.generate`` (the EMA generator when the module has one), in eval
mode, with latents drawn from ``seed``: the same checkpoint, seed and num give identical files,
whatever batch_size or device.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ganrun import imagefiles
from ganrun.runner.devices import pick_device
from ganrun.errors import UserError
from ganrun.commands.keyvalue import run_command
from ganrun.generate import truncated_latents
from ganrun.latents import balanced_labels, interpolation_latents, seeded_latents
from ganrun.nets.stylegan2 import NOISE_MODES
from ganrun.progress import track
from ganrun.style_sampling import (interpolation_ws, is_style_based, mapped_ws, mixing_ws,
                                   parse_layers, synthesize)

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
  label=null        conditional models: only this class; null: a balanced mix, saved as
                    labels.csv (png) or the `labels` array (npz)
  interpolate=false true: interpolation.png, each row a path between two random latents
                    (in W, a straight line, for a style-based generator: StyleGAN2)
  steps=8           images per interpolation row
  slerp=true        spherical (true) or linear (false) interpolation (z space)
  nrow=null         images per grid row (default: a square grid); with mix=true the
                    number of column sources (default: num)
  truncation=null   the truncation trick: StyleGAN2: psi, each w pulled towards the
                    tracked mean w_avg (1: none, 0.7: typical, 0: every image is w_avg's);
                    other generators: latents from a normal truncated to +-truncation
  truncation_cutoff=null  StyleGAN2: truncate only the first N style layers (coarse)
  noise_mode=null   StyleGAN2: const (the default: reproducible), random or none
  mix=false         StyleGAN2: mixing.png, a style-mixing grid: num row sources (seed) give
                    the coarse styles, the column sources (seed + 1) the layers mix_layers
  mix_layers=null   style layers taken from the column sources: a range 4-7 or a list
                    0,1,2 (0 = coarsest); null: the finer half
  overwrite=false   replace files of an earlier run in `out` instead of refusing
  trust_targets=[]  module prefixes of your own networks the checkpoint may name, e.g.
                    [my_pkg.nets] (README: Loading files from others)

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
    label: Optional[int] = None
    interpolate: bool = False
    steps: int = 8
    slerp: bool = True
    nrow: Optional[int] = None
    truncation: Optional[float] = None
    truncation_cutoff: Optional[int] = None
    noise_mode: Optional[str] = None
    mix: bool = False
    mix_layers: Optional[str] = None
    overwrite: bool = False
    trust_targets: list[str] = field(default_factory=list)


FORMATS = ("png", "npz", "grid")


def check(cfg: SampleConfig) -> None:
    if not cfg.ckpt:
        raise UserError(f"{PROG}: no checkpoint given. Add ckpt=<file>, e.g. "
                        "ckpt=outputs/<date>/<time>/checkpoints/last.ckpt.")
    for key, low in (("num", 1), ("batch_size", 1), ("steps", 2)):
        if getattr(cfg, key) < low:
            raise UserError(f"{PROG}: {key} must be at least {low}, got {getattr(cfg, key)}.")
    if cfg.nrow is not None and cfg.nrow < 1:
        raise UserError(f"{PROG}: nrow must be at least 1, got {cfg.nrow}.")
    if cfg.format not in FORMATS:
        raise UserError(f"{PROG}: unknown format '{cfg.format}'. Use format=png (one file per "
                        "sample), format=npz (one array file) or format=grid (one image).")
    for key in ("interpolate", "mix"):
        if getattr(cfg, key) and cfg.format == "npz":
            raise UserError(f"{PROG}: {key}=true writes one PNG grid, not an .npz. Drop "
                            f"format=npz, or drop {key}=true to get samples.npz.")
    if cfg.interpolate and cfg.mix:
        raise UserError(f"{PROG}: interpolate=true and mix=true each write their own grid. "
                        "Pick one.")
    if cfg.truncation is not None and cfg.truncation < 0:
        raise UserError(f"{PROG}: truncation must be 0 or more, got {cfg.truncation}.")
    if cfg.noise_mode not in (None, *NOISE_MODES):
        raise UserError(f"{PROG}: noise_mode must be one of {', '.join(NOISE_MODES)}, got "
                        f"'{cfg.noise_mode}'.")


def check_style_options(cfg: SampleConfig, style_based: bool) -> None:
    """The W-space keys need a style-based generator (StyleGAN2)."""
    given = [key for key, off in (("truncation_cutoff", None), ("noise_mode", None),
                                  ("mix", False), ("mix_layers", None))
             if getattr(cfg, key) != off]
    if given and not style_based:
        raise UserError(f"{PROG}: {', '.join(given)} apply to style-based generators "
                        "(task=stylegan2), and this checkpoint's generator maps latents to "
                        "images directly. Drop them (truncation=... still works: it truncates "
                        "the latents).")
    if style_based and cfg.truncation is None and cfg.truncation_cutoff is not None:
        raise UserError(f"{PROG}: truncation_cutoff={cfg.truncation_cutoff} needs a truncation "
                        "to apply, e.g. truncation=0.7.")


def num_classes(module) -> int:
    """Classes the generator is conditioned on; 0 for an unconditional generator."""
    if not module.num_classes:
        return 0
    return int((module.data_shape or {}).get("num_classes") or module.num_classes)


def make_labels(module, label: Optional[int], num: int) -> Optional[torch.Tensor]:
    classes = num_classes(module)
    if label is None:
        return balanced_labels(num, classes) if classes else None
    if not classes:
        raise UserError(f"{PROG}: label={label} was given, but this checkpoint's generator is "
                        "unconditional (it takes no class labels). Drop label=.")
    if not 0 <= label < classes:
        raise UserError(f"{PROG}: label={label} is out of range: the model was trained on "
                        f"{classes} classes, so label must be 0 to {classes - 1}.")
    return torch.full((num,), label, dtype=torch.long)


def generate(module, z: torch.Tensor, labels: Optional[torch.Tensor], batch_size: int,
             options: Optional[dict] = None):
    """Yields (start index, samples in [-1, 1] on the CPU) batch by batch. ``options`` go to
    the generator (StyleGAN2's truncation and noise)."""
    for start in range(0, len(z), batch_size):
        part = None if labels is None else labels[start:start + batch_size].to(module.device)
        yield start, module.generate(z[start:start + batch_size], part, **(options or {})).cpu()


def square_nrow(num: int) -> int:
    return max(1, math.ceil(math.sqrt(num)))


def write_pngs(module, cfg, out: Path, z, labels, options=None) -> list[str]:
    width = max(6, len(str(cfg.num - 1)))
    names = [f"sample_{i:0{width}d}.png" for i in range(cfg.num)]
    extra = ["labels.csv"] if labels is not None else []
    imagefiles.check_png_channels(module.data_shape["channels"])
    imagefiles.prepare_folder(out, names + extra, cfg.overwrite)
    with track("Samples", cfg.num, "img", hint="num", min_total=MANY_FILES) as bar:
        for start, images in generate(module, z, labels, cfg.batch_size, options):
            for offset, pixels in enumerate(imagefiles.to_uint8(images)):
                imagefiles.write_png(out / names[start + offset], pixels)
            bar.advance(len(images))
    if labels is not None:
        imagefiles.write_labels_csv(out / "labels.csv", names, labels)
    return names + extra


def write_npz(module, cfg, out: Path, z, labels, options=None) -> list[str]:
    imagefiles.prepare_folder(out, ["samples.npz"], cfg.overwrite)
    samples = torch.cat([images for _, images in generate(module, z, labels, cfg.batch_size,
                                                          options)])
    arrays = {"images": imagefiles.to_uint8(samples).permute(0, 2, 3, 1).numpy()}
    if samples.shape[-2:] == (1, 1):  # point data: uint8 would round the coordinates away
        arrays["points"] = samples.flatten(1).numpy()
    if labels is not None:
        arrays["labels"] = labels.numpy()
    imagefiles.write_npz(out / "samples.npz", arrays)
    return ["samples.npz"]


def write_grid(module, cfg, out: Path, z, labels, name: str, nrow: int,
               options=None) -> list[str]:
    samples = torch.cat([images for _, images in generate(module, z, labels, cfg.batch_size,
                                                          options)])
    return write_image_grid(module, cfg, out, samples, name, nrow)


def write_image_grid(module, cfg, out: Path, samples, name: str, nrow: int) -> list[str]:
    imagefiles.check_png_channels(module.data_shape["channels"])
    imagefiles.prepare_folder(out, [name], cfg.overwrite)
    imagefiles.write_grid(out / name, imagefiles.to_uint8(samples), nrow)
    return [name]


def sample(cfg: SampleConfig) -> list[str]:
    """Writes the samples that ``cfg`` asks for; returns the names of the files written."""
    from ganrun.loading import load_trained  # imports Lightning: after the cheap checks

    check(cfg)
    device = pick_device(cfg.device)
    module = load_trained(cfg.ckpt, device, list(cfg.trust_targets))
    out = Path(cfg.out).expanduser()
    style_based = is_style_based(module.generator)
    check_style_options(cfg, style_based)
    if style_based:
        return sample_style_based(module, cfg, out)
    if cfg.interpolate:
        z = interpolation_latents(cfg.num, cfg.steps, module.latent_dim, cfg.seed, cfg.slerp)
        row_labels = make_labels(module, cfg.label, cfg.num)
        labels = None if row_labels is None else row_labels.repeat_interleave(cfg.steps)
        return write_grid(module, cfg, out, z, labels, "interpolation.png", cfg.steps)
    z = seeded_latents(cfg.num, module.latent_dim, cfg.seed) if not cfg.truncation else \
        truncated_latents(cfg.num, module.latent_dim, cfg.seed, cfg.truncation)
    return write_samples(module, cfg, out, z, make_labels(module, cfg.label, cfg.num))


def write_samples(module, cfg, out: Path, z, labels, options=None) -> list[str]:
    """Samples of latents ``z`` in the format ``cfg`` asks for."""
    if cfg.format == "npz":
        return write_npz(module, cfg, out, z, labels, options)
    if cfg.format == "grid":
        return write_grid(module, cfg, out, z, labels, "grid.png",
                          cfg.nrow or square_nrow(cfg.num), options)
    return write_pngs(module, cfg, out, z, labels, options)


def sample_style_based(module, cfg, out: Path) -> list[str]:
    """Samples, a style-mixing grid or a W-space interpolation of a StyleGAN2 generator."""
    G, noise_mode = module.generator, cfg.noise_mode or "const"
    psi = 1.0 if cfg.truncation is None else cfg.truncation

    def ws_of(z, labels):
        return mapped_ws(G, z, labels, psi, cfg.truncation_cutoff)

    def images_of(ws):
        return torch.cat([synthesize(G, ws[i:i + cfg.batch_size], noise_mode).cpu()
                          for i in range(0, len(ws), cfg.batch_size)])

    if cfg.mix:
        cols = cfg.nrow or cfg.num
        layers = parse_layers(cfg.mix_layers, G.num_ws)
        row_ws = ws_of(seeded_latents(cfg.num, module.latent_dim, cfg.seed),
                       make_labels(module, cfg.label, cfg.num))
        col_ws = ws_of(seeded_latents(cols, module.latent_dim, cfg.seed + 1),
                       make_labels(module, cfg.label, cols))
        rows, top = images_of(row_ws), images_of(col_ws)
        mixed = images_of(mixing_ws(row_ws, col_ws, layers)).view(cfg.num, cols, *top.shape[1:])
        # Top row: the column sources after an empty (black) corner; then each row's source
        # followed by its mixes.
        corner = torch.full_like(top[:1], -1.0)
        grid = torch.cat([torch.cat([corner, top])] +
                         [torch.cat([rows[i:i + 1], mixed[i]]) for i in range(cfg.num)])
        return write_image_grid(module, cfg, out, grid, "mixing.png", cols + 1)
    if cfg.interpolate:
        ends = seeded_latents(2 * cfg.num, module.latent_dim, cfg.seed).view(cfg.num, 2, -1)
        labels = make_labels(module, cfg.label, cfg.num)
        path = interpolation_ws(ws_of(ends[:, 0], labels), ws_of(ends[:, 1], labels), cfg.steps)
        return write_image_grid(module, cfg, out, images_of(path), "interpolation.png",
                                cfg.steps)
    options = {"truncation_psi": psi, "truncation_cutoff": cfg.truncation_cutoff,
               "noise_mode": noise_mode}
    return write_samples(module, cfg, out, seeded_latents(cfg.num, module.latent_dim, cfg.seed),
                         make_labels(module, cfg.label, cfg.num), options)


def main(argv: list[str]) -> None:
    done = run_command(argv, SampleConfig, PROG, HELP, sample)
    if not done:
        return
    cfg, written = done
    shown = written[0] if len(written) == 1 else f"{written[0]} ... {written[-1]}"
    print(f"Wrote {len(written)} file(s) to {Path(cfg.out).expanduser()}: {shown}")
