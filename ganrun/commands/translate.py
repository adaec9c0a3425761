"""``ganrun translate``: a trained translator (CycleGAN, or pix2pix / super-resolution /
inpainting) applied to a folder of images.

The generators are fully convolutional, so images of any size are translated at their own
size (padded by reflection to the networks' multiple, then cropped back; a super-resolution
output is ``scale`` times the input), in batches of same-sized images, keeping each file's name
and relative path. An inpainting model takes a folder of masks (``mask=``, white = hole) or
draws its degradation's test masks (the centre box by default).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ganrun.errors import UserError
from ganrun.commands.keyvalue import run_command

if TYPE_CHECKING:  # imported where used: `ganrun translate --help` loads no torch
    import torch

PROG = "ganrun translate"
DIRECTIONS = ("AtoB", "BtoA")

HELP = """usage: ganrun translate ckpt=<file> in=<folder> out=<folder> [key=value ...]

Translates every image under `in` with a trained translator (task=cyclegan or task=pix2pix:
pix2pix, super-resolution, inpainting) and writes the results to `out` under the same names
and sub-folders.

keys:
  ckpt=PATH          checkpoint written by ganrun train with task=cyclegan, or its export
                     folder (ganrun export) (required)
  in=FOLDER          images of the source domain, any size (required)
  out=FOLDER         output folder, created if needed (required)
  direction=AtoB     AtoB (G_AB) or BtoA (G_BA); task=pix2pix has only AtoB
  mask=FOLDER        inpainting: masks named like the inputs (any extension; white/non-zero =
                     hole, same size as the image); without it, the model's test masks are
                     drawn (degrade.test_masks: the centre box, or random masks seeded per file)
  batch_size=16      images translated at once (same-sized images are batched together)
  device=auto        auto (a GPU when there is one), cpu, cuda, cuda:1, ...
  overwrite=false    replace files of an earlier run in `out` instead of refusing
  trust_targets=[]   packages of your own whose classes the checkpoint may name
                     (docs/sharing.md: Files from others)

Example:
  ganrun translate ckpt=outputs/2026-01-01/12-00-00/checkpoints/last.ckpt in=photos out=monet
"""


@dataclass
class TranslateConfig:
    ckpt: Optional[str] = None
    input: Optional[str] = None  # `in=` on the command line
    out: Optional[str] = None
    direction: str = "AtoB"
    mask: Optional[str] = None
    batch_size: int = 16
    device: str = "auto"
    overwrite: bool = False
    trust_targets: list[str] = field(default_factory=list)


def check(cfg: TranslateConfig) -> None:
    if not (cfg.ckpt and cfg.input and cfg.out):
        raise UserError(f"{PROG}: give ckpt=<checkpoint>, in=<folder of images> and "
                        "out=<folder>, e.g. ckpt=outputs/<date>/<time>/checkpoints/last.ckpt "
                        "in=testA out=translated.")
    if cfg.direction not in DIRECTIONS:
        raise UserError(f"{PROG}: direction={cfg.direction} is not a direction. Use "
                        "direction=AtoB (domain A to B, G_AB) or direction=BtoA (G_BA).")
    if cfg.batch_size < 1:
        raise UserError(f"{PROG}: batch_size must be at least 1, got {cfg.batch_size}.")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise unreadable(path, err) from None


def read_image(path: Path, channels: int, max_pixels: int | None = None) -> torch.Tensor:
    """A [-1, 1] image (channels, H, W) in the source domain's channels."""
    import numpy as np
    import torch

    from ganrun.data.decode import open_image

    pixels = np.array(open_image(path, "L" if channels == 1 else "RGB", "The input folder",
                                 max_pixels))
    tensor = torch.from_numpy(pixels).float().div(127.5).sub(1)
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)


def unreadable(path: Path, err: Exception) -> UserError:
    from ganrun.data.base import one_line

    return UserError(f"{path} is not a readable image ({one_line(err)}). Delete or replace the "
                     "file, or move it out of the input folder.")


def translate_batch(translator, inputs: torch.Tensor, direction: str) -> torch.Tensor:
    """Inputs of any size: padded by reflection to the networks' multiple, translated, and
    the output (``scale`` times larger for super-resolution) cropped back."""
    import torch.nn.functional as F

    height, width = inputs.shape[-2:]
    multiple, scale = translator.size_multiple, translator.scale
    pad_h, pad_w = -height % multiple, -width % multiple
    mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
    padded = F.pad(inputs, (0, pad_w, 0, pad_h), mode=mode)
    return translator.translate(padded, direction)[..., :height * scale, :width * scale]


def read_mask(folder: Path, name: Path, size: tuple[int, int]) -> torch.Tensor:
    """The mask (1, H, W) of 0/1 for the input ``name``: ``folder/name`` with any extension."""
    from ganrun.data.folder import is_image

    candidates = sorted(p for p in (folder / name).parent.glob(f"{name.stem}.*") if is_image(p))
    if not candidates:
        raise UserError(f"{PROG}: no mask for {name} in {folder} (looked for "
                        f"{folder / name.with_suffix('.*')}). Give every input a mask of the "
                        "same name (white = hole), or leave out mask= to use the model's test "
                        "masks.")
    mask = read_image(candidates[0], 1).gt(0).float()
    if tuple(mask.shape[-2:]) != (size[1], size[0]):
        raise UserError(f"{PROG}: the mask {candidates[0]} is {mask.shape[-1]}x{mask.shape[-2]} "
                        f"but its image is {size[0]}x{size[1]}. Masks must match their images "
                        "pixel for pixel.")
    return mask


def translate(cfg: TranslateConfig) -> list[Path]:
    """Writes the translated images; returns their paths relative to ``out``."""
    import torch

    from ganrun.inference import imagefiles
    from ganrun.inference.loading import load, refuse_kind
    from ganrun.metrics.folders import list_images
    from ganrun.runner.devices import pick_device

    check(cfg)
    source = Path(cfg.input).expanduser()
    paths = list_images(source, "input")
    model = load(cfg.ckpt, pick_device(cfg.device, PROG), list(cfg.trust_targets)).model
    translator = model.translator
    if translator is None:
        raise refuse_kind(cfg.ckpt, model, "a translator of images",
                          f"ganrun sample ckpt={cfg.ckpt}")
    translator.check_direction(cfg.direction)
    if cfg.mask and not translator.takes_mask:
        raise UserError(f"{PROG}: mask= is for inpainting models (task=pix2pix with "
                        f"degrade=mask); this model is {translator.kind}. Leave out mask=.")
    masks = Path(cfg.mask).expanduser() if cfg.mask else None
    if masks is not None and not masks.is_dir():
        raise UserError(f"{PROG}: the mask folder {masks} does not exist.")
    channels = translator.input_channels(cfg.direction)
    names = [p.relative_to(source) for p in paths]
    out = Path(cfg.out).expanduser()
    imagefiles.prepare_folder(out, [str(n) for n in names], cfg.overwrite)
    by_size = defaultdict(list)  # batches hold images of one size
    for index, (path, name) in enumerate(zip(paths, names)):
        by_size[image_size(path)].append((index, path, name))
    for size, group in by_size.items():
        for start in range(0, len(group), cfg.batch_size):
            part = group[start:start + cfg.batch_size]
            images = torch.stack([read_image(path, channels) for _, path, _ in part])
            hole = None if masks is None else \
                torch.stack([read_mask(masks, name, size) for _, _, name in part])
            # A drawn test mask is seeded by the file's position: one mask per file.
            inputs = translator.inputs(images, hole, [index for index, _, _ in part])
            translated = translate_batch(translator, inputs.to(translator.device),
                                         cfg.direction)
            for (_, _, name), pixels in zip(part, imagefiles.to_uint8(translated)):
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                imagefiles.write_image(out / name, pixels)
    return names


def main(argv: list[str]) -> None:
    argv = ["input=" + a.removeprefix("in=") if a.startswith("in=") else a for a in argv]
    done = run_command(argv, TranslateConfig, PROG, HELP, translate)
    if done:
        cfg, names = done
        print(f"Translated {len(names)} image(s) {cfg.direction} into {Path(cfg.out).expanduser()}")
