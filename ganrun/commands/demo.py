"""``ganrun demo``: a local web page (Gradio) to explore a trained model.

The page is built from what the model declares after training (``ganrun.inference.model``),
never from its task's name: a sampler gets a seed, a batch size, its own sampling keys (a class,
truncation, StyleGAN2's style mixing, a caption...) and a latent interpolation strip; a
translator gets an image upload (and a mask for inpainting) per direction. Every picture is made
by the same code as ``ganrun sample ... format=grid`` and ``ganrun translate``, so the page and
the commands give the same pixels for the same settings.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Optional

import torch

from ganrun.commands.keyvalue import run_command
from ganrun.errors import UserError

PROG = "ganrun demo"

HELP = """usage: ganrun demo ckpt=<export folder or checkpoint> [key=value ...]

Serves a page on this machine to explore a trained model in a browser: seeds, batch size,
class, truncation, style mixing, interpolation strips for generators; an uploaded image (and
mask, for inpainting) for translators. Needs Gradio: pip install "ganrun[demo]".

keys:
  ckpt=PATH          an export folder (ganrun export) or a checkpoint (required)
  port=7860          the port to serve on
  host=127.0.0.1     the address to listen on (0.0.0.0 makes it reachable from other machines)
  max_num=64         the largest batch the page offers
  device=auto        auto (a GPU when there is one), cpu, cuda, cuda:1, ...
  trust_targets=[]   module prefixes of your own networks the file may name

Example:
  ganrun demo ckpt=exports/dcgan port=8080      # then open http://127.0.0.1:8080
"""


@dataclass
class DemoConfig:
    ckpt: Optional[str] = None
    port: int = 7860
    host: str = "127.0.0.1"
    max_num: int = 64
    device: str = "auto"
    trust_targets: list[str] = field(default_factory=list)


def require_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local page calls no one
    try:
        import gradio
    except ImportError:
        raise UserError(f"{PROG} needs Gradio, which is not installed. Install it with "
                        "`pip install 'ganrun[demo]'` (or `pip install gradio`), then run the "
                        "command again.") from None
    return gradio


def demo(cfg: DemoConfig) -> None:
    from ganrun.inference.loading import load
    from ganrun.runner.devices import pick_device

    if not cfg.ckpt:
        raise UserError(f"{PROG}: give ckpt=<export folder or checkpoint>, e.g. "
                        "ckpt=exports/dcgan.")
    if not 1 <= cfg.port <= 65535 or cfg.max_num < 1:
        raise UserError(f"{PROG}: port must be 1-65535 and max_num at least 1 (got port="
                        f"{cfg.port}, max_num={cfg.max_num}).")
    gr = require_gradio()
    loaded = load(cfg.ckpt, pick_device(cfg.device, PROG), list(cfg.trust_targets))
    page = build_page(gr, loaded, cfg)
    print(f"{PROG}: {loaded.model.kind} at http://{cfg.host}:{cfg.port} (Ctrl-C stops it)",
          flush=True)
    try:
        page.queue().launch(server_name=cfg.host, server_port=cfg.port, quiet=True,
                            show_error=True, ssr_mode=False, footer_links=[])
    except OSError as err:
        raise UserError(f"{PROG}: cannot serve on {cfg.host}:{cfg.port} ({err}). Another "
                        "program may use the port: choose another with port=<number>.") from None


def build_page(gr, loaded, cfg: DemoConfig):
    model = loaded.model
    made = ", ".join(f"{k}={v}" for k, v in loaded.choices.items()
                     if k in ("task", "model", "loss", "dataset"))
    with gr.Blocks(title=f"ganrun demo: {model.kind}") as page:
        gr.Markdown(f"## {model.kind[0].upper()}{model.kind[1:]}\n\n`{cfg.ckpt}`"
                    + (f" ({made}; {loaded.iteration:,} iterations)" if made and
                       loaded.iteration is not None else ""))
        if model.sampler is not None:
            sampler_controls(gr, model.sampler, cfg.max_num)
        if model.translator is not None:
            translator_controls(gr, model.translator)
    return page


# ---- Samplers ---------------------------------------------------------------------------------

def sampler_controls(gr, sampler, max_num: int) -> None:
    with gr.Row():
        seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
        num = gr.Slider(1, max_num, value=min(16, max_num), step=1, label="images",
                        elem_id="num")
        strip = gr.Checkbox(False, label="interpolation strips (num rows)",
                            elem_id="interpolate")
        steps = gr.Slider(2, 16, value=8, step=1, label="steps per strip", elem_id="steps")
    keys = [option_field(gr, sampler, f) for f in dataclasses.fields(sampler.Options)]
    button = gr.Button("Generate", elem_id="generate", variant="primary")
    output = gr.Image(label="samples", format="png", type="numpy", interactive=False,
                      elem_id="output")

    def generate(seed, num, strip, steps, *values):
        options = sampler_options(sampler, dataclasses.fields(sampler.Options), values)
        return grid_pixels(*sample_grid(sampler, int(num), int(seed or 0), options,
                                        bool(strip), int(steps)))

    button.click(as_page_error(generate), [seed, num, strip, steps, *keys], output)


def option_field(gr, sampler, option: dataclasses.Field):
    """A widget for one of the sampler's own keys, by its type."""
    help_text = option.metadata.get("help", "")
    names = sampler.class_names
    if option.name == "label" and names:
        return gr.Dropdown(["balanced mix", *names], value="balanced mix", label="class",
                           info=help_text, elem_id="label")
    kind = _base_type(option.type)
    if kind is bool:
        return gr.Checkbox(bool(option.default), label=option.name, info=help_text,
                           elem_id=option.name)
    if kind in (int, float) and option.default is not None:
        return gr.Number(option.default, label=option.name, info=help_text,
                         precision=0 if kind is int else None, elem_id=option.name)
    return gr.Textbox("" if option.default is None else str(option.default), label=option.name,
                      info=help_text, elem_id=option.name,
                      placeholder="empty: null" if option.default is None else None)


def _base_type(hint) -> type:
    if isinstance(hint, str):
        hint = {"Optional[int]": int, "Optional[float]": float, "Optional[str]": str,
                "int": int, "float": float, "bool": bool, "str": str}.get(hint, str)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def sampler_options(sampler, options, values):
    """The sampler's Options from the widgets' values, checked as ``ganrun sample`` checks
    them (empty means null)."""
    given = {}
    for option, value in zip(options, values):
        if option.name == "label" and sampler.class_names and isinstance(value, str):
            value = None if value == "balanced mix" else sampler.class_names.index(value)
        kind = _base_type(option.type)
        if value == "" or value is None:
            value = None
        elif kind in (int, float):
            try:
                value = kind(float(value)) if kind is int else float(value)
            except ValueError:
                raise UserError(f"{option.name} must be a number or empty, got "
                                f"'{value}'.") from None
        given[option.name] = value
    result = sampler.Options(**given)
    sampler.check(result)
    return result


def sample_grid(sampler, num: int, seed: int, options, interpolate: bool,
                steps: int) -> tuple[torch.Tensor, int]:
    """The images and images per row that ``ganrun sample ... format=grid`` writes for these
    settings (``interpolate=true``, or the model's own grid such as style mixing)."""
    from ganrun.commands.sample import grid_images

    _, images, nrow = grid_images(sampler, sampler.count(num, options), seed, options,
                                  interpolate=interpolate, steps=steps)
    return images, nrow


def grid_pixels(images: torch.Tensor, nrow: int):
    """An (H, W, 3) uint8 array of the grid ``ganrun sample`` writes as PNG."""
    from torchvision.utils import make_grid

    from ganrun.inference import imagefiles

    grid = make_grid(imagefiles.to_uint8(images), nrow=nrow, padding=2)
    return _rgb(grid)


def _rgb(pixels: torch.Tensor):
    return (pixels[:1].expand(3, -1, -1) if pixels.shape[0] == 1 else pixels) \
        .permute(1, 2, 0).contiguous().numpy()


# ---- Translators ------------------------------------------------------------------------------

def translator_controls(gr, translator) -> None:
    with gr.Row():
        source = gr.Image(label="input image", type="filepath", elem_id="input_image")
        mask = gr.Image(label="mask (white = hole; empty: the model's test mask)",
                        type="filepath", elem_id="mask_image") if translator.takes_mask else None
        direction = gr.Dropdown(list(translator.directions), value=translator.directions[0],
                                label="direction", elem_id="direction",
                                visible=len(translator.directions) > 1)
    button = gr.Button("Translate", elem_id="translate", variant="primary")
    with gr.Row():
        output = gr.Image(label="translated", format="png", type="numpy", interactive=False,
                          elem_id="translated")
        hole = gr.Image(label="hole", format="png", type="numpy", interactive=False,
                        elem_id="hole", visible=translator.takes_mask)

    def run(path, direction, mask_path=None):
        if not path:
            raise UserError("Upload an image first.")
        translated, hole_pixels = translate_file(translator, path, direction, mask_path)
        return translated, hole_pixels

    inputs = [source, direction] + ([mask] if mask is not None else [])
    button.click(as_page_error(run), inputs, [output, hole])


def translate_file(translator, path: str, direction: str, mask_path: str | None = None):
    """One image translated as ``ganrun translate`` translates it as the first file of a folder
    (the same padding, and the same drawn test mask when no mask is given)."""
    from pathlib import Path

    from ganrun.commands.translate import read_image, translate_batch
    from ganrun.inference import imagefiles

    translator.check_direction(direction)
    images = read_image(Path(path), translator.input_channels(direction))[None]
    masks = None
    if mask_path:
        masks = read_image(Path(mask_path), 1).gt(0).float()[None]
        if masks.shape[-2:] != images.shape[-2:]:
            raise UserError(f"The mask is {masks.shape[-1]}x{masks.shape[-2]} but the image is "
                            f"{images.shape[-1]}x{images.shape[-2]}: masks must match their "
                            "images pixel for pixel.")
    inputs = translator.inputs(images, masks, [0]).to(translator.device)
    translated = translate_batch(translator, inputs, direction)
    hole = translator.hole(inputs)
    hole_pixels = None if hole is None else _rgb(hole[0].mul(255).round().byte().cpu())
    return _rgb(imagefiles.to_uint8(translated)[0]), hole_pixels


def as_page_error(fn):
    """A ganrun error (a bad key, a wrong size) shown on the page as Gradio's error box."""
    import functools

    gr = require_gradio()

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except UserError as err:
            raise gr.Error(str(err)) from None
    return wrapped


def main(argv: list[str]) -> None:
    run_command(argv, DemoConfig, PROG, HELP, demo)
