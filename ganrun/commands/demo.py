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
import html
import inspect
import math
import os
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ganrun.commands.keyvalue import run_command
from ganrun.errors import UserError

if TYPE_CHECKING:  # imported where used: `ganrun demo --help` loads no torch
    import torch

PROG = "ganrun demo"

HELP = """usage: ganrun demo ckpt=<export folder or checkpoint> [key=value ...]

Serves a page on this machine to explore a trained model in a browser: seeds, batch size,
class, truncation, style mixing, interpolation strips for generators; an uploaded image (and
mask, for inpainting) for translators. Needs Gradio: pip install "ganrun[demo]".

keys:
  ckpt=PATH          an export folder (ganrun export) or a checkpoint (required)
  port=7860          the port to serve on
  host=127.0.0.1     the address to listen on (0.0.0.0 makes it reachable from other machines)
  max_num=64         the largest batch the page offers (and serves)
  max_pixels=16777216  the largest uploaded image, in pixels (4096x4096), checked before decoding
  max_upload=20mb    the largest uploaded file
  device=auto        auto (a GPU when there is one), cpu, cuda, cuda:1, ...
  trust_targets=[]   packages of your own whose classes the file may name
                     (docs/sharing.md: Files from others)

The page takes only what it shows: no path on this machine, no batch over max_num, no image
over max_pixels. Uploads and results live in a private temporary folder, removed when the
demo stops.

Example:
  ganrun demo ckpt=exports/dcgan port=8080      # then open http://127.0.0.1:8080
"""


@dataclass
class DemoConfig:
    ckpt: Optional[str] = None
    port: int = 7860
    host: str = "127.0.0.1"
    max_num: int = 64
    max_pixels: int = 4096 * 4096
    max_upload: str = "20mb"
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
    import shutil
    import tempfile

    from ganrun.inference.loading import load
    from ganrun.runner.devices import pick_device

    if not cfg.ckpt:
        raise UserError(f"{PROG}: give ckpt=<export folder or checkpoint>, e.g. "
                        "ckpt=exports/dcgan.")
    if not 1 <= cfg.port <= 65535 or not 1 <= cfg.max_num <= 1024 or cfg.max_pixels < 1:
        raise UserError(f"{PROG}: port must be 1-65535, max_num 1-1024 and max_pixels at least 1 "
                        f"(got port={cfg.port}, max_num={cfg.max_num}, "
                        f"max_pixels={cfg.max_pixels}).")
    check_host(cfg.host)
    # Uploads and results in a folder of this demo's own (mode 0700), removed when it stops:
    # Gradio's default is a world-readable folder kept forever.
    private = tempfile.mkdtemp(prefix="ganrun-demo-")
    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = private
    try:
        gr = require_gradio()
        loaded = load(cfg.ckpt, pick_device(cfg.device, PROG), list(cfg.trust_targets))
        page = build_page(gr, loaded, cfg)
        print(f"{PROG}: {loaded.model.kind} at http://{cfg.host}:{cfg.port} (Ctrl-C stops it)",
              flush=True)
        try:
            page.queue().launch(server_name=cfg.host, server_port=cfg.port, quiet=True,
                                show_error=True, ssr_mode=False, footer_links=[],
                                max_file_size=cfg.max_upload)
        except OSError as err:
            raise UserError(f"{PROG}: cannot serve on {cfg.host}:{cfg.port} ({err}). Another "
                            "program may use the port: choose another with port=<number>.") \
                from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before


def check_host(host: str) -> None:
    """A host that is no address of this machine is named as such (not blamed on the port)."""
    import ipaddress
    import socket

    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        raise UserError(f"{PROG}: host={host} is not an address this machine can listen on. Use "
                        "127.0.0.1 (this machine only, the default) or 0.0.0.0 (every "
                        "interface).") from None


def build_page(gr, loaded, cfg: DemoConfig):
    from ganrun.markdown import escape, inline_code

    model = loaded.model
    # The export's own words (its choices, its path) are shown literally, never as markup.
    made = ", ".join(f"{escape(k)}={escape(v)}" for k, v in loaded.choices.items()
                     if k in ("task", "model", "loss", "dataset"))
    iterations = loaded.iteration if isinstance(loaded.iteration, int) else None
    with gr.Blocks(title=f"ganrun demo: {model.kind}", delete_cache=(600, 3600)) as page:
        gr.Markdown(f"## {escape(model.kind[0].upper() + model.kind[1:])}\n\n"
                    f"{inline_code(cfg.ckpt)}"
                    + (f" ({made}; {iterations:,} iterations)" if made and
                       iterations is not None else ""), sanitize_html=True)
        if model.sampler is not None:
            sampler_controls(gr, model.sampler, cfg.max_num)
        if model.translator is not None:
            translator_controls(gr, model.translator, cfg.max_pixels)
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
    fields = page_fields(sampler)
    keys = [option_field(gr, sampler, f) for f in fields]
    for widget in (seed, num, strip, steps, *keys):
        lenient(widget)
    button = gr.Button("Generate", elem_id="generate", variant="primary")
    output = gr.Image(label="samples", format="png", type="numpy", interactive=False,
                      elem_id="output")

    def generate(seed, num, strip, steps, *values):
        # What the page sends is checked as the command line's values are: an API client may
        # send anything.
        seed = whole(seed, "seed", 0, 2**32 - 1, default=0)
        num = whole(num, "images", 1, max_num)
        steps = whole(steps, "steps per strip", 2, 16)
        options = sampler_options(sampler, fields, values)
        return grid_pixels(*sample_grid(sampler, num, seed, options, bool(strip), steps))

    named(generate, ["seed", "images", "interpolate", "steps", *(f.name for f in fields)])
    button.click(as_page_error(generate), [seed, num, strip, steps, *keys], output,
                 api_name="generate")


def lenient(widget) -> None:
    """The widget hands over what a client sent, unchecked: ganrun checks it (and escapes what
    its message echoes). Gradio's own checks would echo a value unescaped, or crash with a
    traceback on a value of another type."""
    widget.preprocess = lambda payload: payload


def page_fields(sampler) -> list[dataclasses.Field]:
    """The sampler's keys the page offers: not those naming a file on this machine, and a
    class only for a model that has classes."""
    return [f for f in dataclasses.fields(sampler.Options) if f.metadata.get("page", True)
            and not (f.name == "label" and not getattr(sampler, "num_classes", 0))]


def named(fn, names: list[str]) -> None:
    """Gives ``fn`` (which takes ``*values``) a signature with these parameter names: the
    page's API names its inputs after them instead of ``param_4``."""
    fn.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])


def whole(value, name: str, low: int, high: int, default: int | None = None) -> int:
    """An integer from the page, or a UserError naming the input."""
    if value in (None, "") and default is not None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number) or number != int(number):
        raise UserError(f"{name} must be a whole number from {low} to {high}, got "
                        f"{str(value)[:60]!r}.")
    if not low <= number <= high:
        raise UserError(f"{name} must be from {low} to {high}, got {int(number)}.")
    return int(number)


def option_field(gr, sampler, option: dataclasses.Field):
    """A widget for one of the sampler's own keys, by its type."""
    help_text = option.metadata.get("page_help", option.metadata.get("help", ""))
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
            if value != "balanced mix" and value not in sampler.class_names:
                raise UserError(f"class must be one of the model's classes or 'balanced mix', "
                                f"got {value[:60]!r}.")
            value = None if value == "balanced mix" else sampler.class_names.index(value)
        kind = _base_type(option.type)
        if value == "" or value is None:
            value = None
        elif kind is int:
            value = whole(value, option.name, -2**31, 2**31 - 1)
        elif kind is float:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise UserError(f"{option.name} must be a number or empty, got "
                                f"{str(value)[:60]!r}.") from None
            if value != value or value in (float("inf"), float("-inf")):
                raise UserError(f"{option.name} must be a finite number, got {value}.")
        elif kind is bool:
            value = bool(value)
        elif kind is str:
            value = str(value)
            if len(value) > 1000:
                raise UserError(f"{option.name} is {len(value):,} characters long; the page "
                                "takes at most 1,000.")
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

def translator_controls(gr, translator, max_pixels: int) -> None:
    directions = list(translator.directions)
    with gr.Row():
        # image_mode=None: Gradio hands over the uploaded file undecoded; ganrun reads its size
        # from the header before decoding (max_pixels).
        source = gr.Image(label="input image", type="filepath", image_mode=None,
                          elem_id="input_image")
        mask = gr.Image(label="mask (white = hole; empty: the model's test mask)",
                        type="filepath", image_mode=None, elem_id="mask_image") \
            if translator.takes_mask else None
        # A model with one direction has nothing to choose: no input for it.
        direction = gr.Dropdown(directions, value=directions[0], label="direction",
                                elem_id="direction") if len(directions) > 1 else None
    button = gr.Button("Translate", elem_id="translate", variant="primary")
    with gr.Row():
        output = gr.Image(label="translated", format="png", type="numpy", interactive=False,
                          elem_id="translated")
        hole = gr.Image(label="hole", format="png", type="numpy", interactive=False,
                        elem_id="hole", visible=translator.takes_mask)

    def run(path, *rest):
        rest = list(rest)
        chosen = rest.pop(0) if direction is not None else directions[0]
        mask_path = rest.pop(0) if mask is not None else None
        if not path:
            raise UserError("Upload an image first.")
        if chosen not in directions:
            raise UserError(f"direction must be one of {', '.join(directions)}.")
        return translate_file(translator, path, chosen, mask_path, max_pixels)

    inputs = [source] + ([direction] if direction is not None else []) + \
        ([mask] if mask is not None else [])
    named(run, ["image"] + (["direction"] if direction is not None else []) +
          (["mask"] if mask is not None else []))
    button.click(as_page_error(run), inputs, [output, hole], api_name="translate")


def translate_file(translator, path: str, direction: str, mask_path: str | None = None,
                   max_pixels: int | None = None):
    """One image translated as ``ganrun translate`` translates it as the first file of a folder
    (the same padding, and the same drawn test mask when no mask is given)."""
    from pathlib import Path

    from ganrun.commands.translate import read_image, translate_batch
    from ganrun.inference import imagefiles

    translator.check_direction(direction)
    images = read_image(Path(path), translator.input_channels(direction), max_pixels)[None]
    masks = None
    if mask_path:
        masks = read_image(Path(mask_path), 1, max_pixels).gt(0).float()[None]
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
    """A ganrun error (a bad key, a wrong size) shown on the page as Gradio's error box, its
    text escaped (it may echo what a visitor typed), and one line in the terminal."""
    import functools
    import logging

    gr = require_gradio()

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except UserError as err:
            logging.getLogger("ganrun").info("%s: refused a request: %s", PROG,
                                             " ".join(str(err).split())[:300])
            raise gr.Error(html.escape(str(err)), print_exception=False) from None
    wrapped.__signature__ = inspect.signature(fn)
    return wrapped


def main(argv: list[str]) -> None:
    run_command(argv, DemoConfig, PROG, HELP, demo)
