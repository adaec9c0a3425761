"""The model card of an export: ``README.md`` in Hugging Face's format (a YAML header the hub
reads: library, tags, data set, ``model-index`` with the measured metrics) and a sample image,
written beside ``model.safetensors`` and ``config.json``. Loading an export never reads them.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import torch
import yaml

from ganrun.errors import UserError
from ganrun.files import write_text
from ganrun.inference import imagefiles
from ganrun.markdown import code_block, escape, inline_code, shell_word

from ganrun.inference.names import CARD, PICTURE  # noqa: E402 (re-exported)
log = logging.getLogger("ganrun")

# How each metric a ganrun evaluation records is named on the hub (``type``) and to a reader.
METRIC_NAMES = {
    "fid": ("fid", "FID"), "kid": ("kid", "KID"), "is": ("inception-score", "Inception Score"),
    "precision": ("precision", "Precision"), "recall": ("recall", "Recall"),
    "psnr": ("psnr", "PSNR"), "ssim": ("ssim", "SSIM"),
    "r_precision": ("r-precision", "R-precision"),
}


def write_card(model, info: dict, out: Path, run_folder: Path | None) -> None:
    """``README.md`` (and ``sample.png`` for a sampler whose images PNG can hold) in ``out``."""
    picture = _write_picture(model, out / PICTURE)
    if not picture:
        (out / PICTURE).unlink(missing_ok=True)  # an earlier export's, replaced (overwrite=true)
    header = card_header(model, info, out.name)
    body = card_body(model, info, out, run_folder, picture)
    text = "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n" + body
    write_text(out / CARD, text)


def card_header(model, info: dict, name: str) -> dict:
    choices = info.get("choices") or {}
    dataset = choices.get("dataset") or "unknown"
    pipeline = model.pipeline_tag
    tags = ["ganrun", "gan", "pytorch"] + [str(choices[g]) for g in ("task", "model", "loss")
                                            if choices.get(g)]
    header = {"library_name": "ganrun", "license": str(info.get("license") or "other"),
              "pipeline_tag": pipeline, "tags": list(dict.fromkeys(tags)),
              "datasets": [dataset]}
    # Only metric names of ganrun's form, with finite values: the hub reads these as the
    # model's scores.
    metrics = [{"type": METRIC_NAMES.get(key, (key, key))[0],
                "name": METRIC_NAMES.get(key, (key, key))[1], "value": float(value),
                "verified": False}
               for key, value in own_metrics(model, info.get("metrics") or {}).items()]
    if metrics:
        header["model-index"] = [{"name": name, "results": [{
            "task": {"type": pipeline}, "dataset": {"name": dataset, "type": dataset},
            "metrics": metrics}]}]
    return header


_COUNTS = ("num_samples", "real_samples")


METRIC_KEY = re.compile(r"^[a-z][a-z0-9_]{0,40}$")  # how ganrun's metrics name their values


def _finite(metrics: dict) -> dict:
    """The metrics a card shows: names of ganrun's form, finite numbers (a metrics file may be
    edited: other names and values are left out)."""
    return {key: value for key, value in metrics.items()
            if isinstance(key, str) and METRIC_KEY.match(key) and key not in _COUNTS
            and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def baseline_of(model, key: str) -> str | None:
    """The baseline a metric measures (``psnr_hole_fill``: fill), or None for the model's own."""
    return next((name for name in getattr(model, "baseline_names", ())
                 if key.endswith(f"_{name}")), None)


def own_metrics(model, metrics: dict) -> dict:
    """The model's own metrics (the values of a baseline measured beside it are not its)."""
    return {k: v for k, v in _finite(metrics).items() if baseline_of(model, k) is None}


def card_body(model, info: dict, out: Path, run_folder: Path | None, picture: bool) -> str:
    choices = info.get("choices") or {}
    lines = [f"# {escape(out.name)}", "",
             f"{model.kind[0].upper()}{model.kind[1:]}, trained with ganrun (a "
             "command-line experiment runner for GANs).", ""]
    made = [f"{group}={choices[group]}" for group in ("task", "model", "loss", "dataset")
            if choices.get(group)]
    if made:
        lines += [f"- Made of: {', '.join(inline_code(m) for m in made)}"]
    if isinstance(info.get("iteration"), int):
        lines += [f"- Trained for {info['iteration']:,} iterations (seed "
                  f"{escape(info.get('seed'))})"]
    command = training_command(run_folder) or info.get("training_command")
    lines += ["", "## Training", "", *code_block(command)] if command else \
        ["", "## Training", "", "The training command was not found beside the checkpoint."]
    lines += ["", "## Metrics", ""] + _metric_lines(model, info.get("metrics") or {})
    if picture:
        lines += ["", "## Samples", "", f"![samples of seed 0]({PICTURE})", "",
                  "16 samples of seed 0 (`ganrun sample ckpt=<this folder> num=16 seed=0 "
                  "format=grid`)."]
    package = own_package(model)
    lines += ["", "## Use", "", f"Get ganrun (`pip install ganrun`, or `pip install -e .` in its "
              f"repository; this model was exported by ganrun {escape(info.get('ganrun_version') or '')}"
              "), then:", "", *code_block("\n".join(_use_lines(model, package))), ""]
    if package:
        lines += [f"The networks are classes of the package `{package}` (a task of its own): it "
                  "must be importable (installed, or on `PYTHONPATH`), and loading the model "
                  f"must trust it: `trust_targets=[{package}]`.", ""]
    lines += ["`model.safetensors` holds the weights and `config.json` the networks' settings "
              "(plain data: loading builds only networks ganrun allows); this card is not "
              "read when loading.", ""]
    return "\n".join(lines)


def own_package(model) -> str | None:
    """The top-level package of networks that are not ganrun's (a user's own task), if any."""
    for net in model.nets.values():
        target = str((getattr(net, "ganrun_config", None) or {}).get("_target_", ""))
        if target and not target.startswith("ganrun."):
            return target.split(".", 1)[0]
    return None


def training_command(run_folder: Path | None) -> str | None:
    """``ganrun train`` with the overrides the run folder's ``.hydra/overrides.yaml`` holds, and
    the ``--config-dir`` it was trained with (a task of the user's own)."""
    from ganrun.runner.recorded import read_overrides, recorded_config_dir

    if run_folder is None:
        return None
    try:
        overrides = read_overrides(run_folder)
        folder = recorded_config_dir(run_folder)
    except UserError:
        return None
    extra = ["--config-dir", folder] if folder else []
    return " ".join(["ganrun train", *(shell_word(o) for o in [*overrides, *extra])])


def _metric_lines(model, metrics: dict) -> list[str]:
    values = own_metrics(model, metrics)
    baselines = {k: v for k, v in _finite(metrics).items() if k not in values}
    if not values:
        return ["Not measured: run `ganrun eval ckpt=<checkpoint>` (or `ganrun eval ckpt=<this "
                "folder>`, which updates this card) to record the values."]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {escape(METRIC_NAMES.get(k, (k, k))[1])} | {v:.4g} |" for k, v in values.items()]
    count = metrics.get("num_samples")
    if model.translator is not None:
        how = "Measured by `ganrun eval` on the first test pairs of the data set" + \
            (f" ({count:,} pairs)" if isinstance(count, int) else "")
    else:
        how = "Measured by `ganrun eval` against real images of the data set it was trained on"
        if isinstance(count, int):
            real = metrics.get("real_samples")
            how += (f" (FID from {count:,} generated and {real:,} real images)"
                    if isinstance(real, int) else f" ({count:,} generated images)")
    lines += ["", how + "."]
    if baselines:
        name = baseline_of(model, next(iter(baselines)))
        lines += ["", f"The non-learnt baseline ({escape(name)}) on the same images, for "
                      "comparison (not this model's values): " + ", ".join(
                          f"{escape(k)} {v:.4g}" for k, v in baselines.items()) + "."]
    return lines


def _use_lines(model, package: str | None = None) -> list[str]:
    trust = f" trust_targets=[{package}]" if package else ""
    if model.translator is not None:
        return [f"ganrun translate ckpt=<this folder> in=<images> out=<folder>{trust}"]
    python_trust = f", trust=['{package}']" if package else ""
    return [f"ganrun sample ckpt=<this folder> num=64 out=samples{trust}", "",
            "# in Python", "from ganrun import load_generator, generate_images",
            f"generator = load_generator('<this folder>'{python_trust})",
            "images = generate_images(generator, 16, seed=0)  # (16, C, H, W) in [-1, 1]"]


def _write_picture(model, path: Path) -> bool:
    """16 samples of seed 0 as a grid; False where the model has no sampler, its images are not
    PNG-able (toy point data) or it needs options to sample (text)."""
    sampler = model.sampler
    if sampler is None or sampler.data_shape.get("channels") not in (1, 3):
        return False
    try:
        images = torch.cat([batch for _, batch in sampler.samples(16, 0, sampler.options())])
    except UserError as err:
        log.info("No sample image in the model card: %s", err)
        return False
    imagefiles.write_grid(path, imagefiles.to_uint8(images), 4)
    return True
