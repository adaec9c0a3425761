"""``ganrun eval``: metrics of a checkpoint, or between two folders of images, as JSON."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig

from ganrun.config import config_dir, validate_eval
from ganrun.errors import UserError, user_error_behind
from ganrun.private_apis import hydra_args_parser, run_hydra
from ganrun.commands.hydra_app import (check_command_line, composed_mode, print_help,
                                       quiet_library_noise)

if TYPE_CHECKING:  # imported where used: `ganrun eval --help` loads no torch
    import torch

log = logging.getLogger("ganrun")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    from ganrun.runner.devices import pick_device

    cfg = validate_eval(cfg)
    if bool(cfg.ckpt) == bool(cfg.real or cfg.fake) or bool(cfg.real) != bool(cfg.fake):
        raise UserError("Give either ckpt=PATH (a checkpoint of `ganrun train`) or both "
                        "real=DIR and fake=DIR (two folders of images), e.g. `ganrun eval "
                        "ckpt=outputs/<date>/<time>/checkpoints/last.ckpt`.")
    metrics = instantiate(cfg.metrics.evaluate)
    if not metrics:
        raise UserError("No metric is selected (metrics=none). Choose some, e.g. metrics=fid.")
    device = pick_device(cfg.device, "ganrun eval")
    if cfg.ckpt:
        root = to_absolute_path(cfg.data_root) if cfg.get("data_root") else None
        return of_checkpoint(Path(to_absolute_path(cfg.ckpt)), metrics, device, cfg.seed,
                             list(cfg.get("trust_targets") or []), root)
    return {**of_folders(cfg.real, cfg.fake, metrics), **counts_of(metrics)}


def counts_of(metrics: dict) -> dict[str, int]:
    """The image counts behind the FID, logged with a warning where they are too few."""
    from ganrun.metrics.sample_counts import few_samples_warning, fid_counts

    counts = fid_counts(metrics)
    if counts:
        log.info("FID from %s generated and %s real images", counts["num_samples"],
                 counts["real_samples"])
        warning = few_samples_warning(counts)
        if warning:
            log.warning(warning)
    return counts


def of_checkpoint(path: Path, metrics: dict, device: torch.device, seed: int,
                  trust: list[str], data_root: str | None = None) -> dict:
    """Metrics of a checkpoint or an export folder against its training data set's real
    images; also added to the checkpoint's metrics file (``ganrun.metrics.record``)."""
    import torch

    from ganrun.inference.loading import load

    loaded = load(path, device, trust)
    if not loaded.dataset:
        raise UserError(f"'{path}' does not say which data set it was trained on, so there "
                        "are no real images to compare with. Use real=DIR fake=DIR with "
                        "images written by `ganrun sample`.")
    for metric in metrics.values():
        metric.check_model(loaded.model)  # before any data is read
    data = instantiate(located(loaded.dataset, path, data_root))
    values = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            data_root_advice():
        torch.manual_seed(seed)
        for metric in metrics.values():
            values.update(metric.evaluate_model(loaded.model, data))
    values.update(counts_of(metrics))
    images = {name: values.pop(name) for name in list(values)
              if isinstance(values[name], torch.Tensor)}
    keep(path, values, images)
    if path.is_dir():  # an export: its card shows the metrics now recorded
        refresh_card(path, loaded.model)
    return values


@contextlib.contextmanager
def data_root_advice():
    """A data set's own advice names ganrun train's key (dataset.root); ganrun eval's is
    data_root."""
    try:
        yield
    except UserError as err:
        text = str(err).replace("Set dataset.root to", "Give data_root=<folder>:") \
            .replace("set dataset.root", "give data_root=<folder>")
        if "dataset.root" in text and "data_root" not in text:
            text += " (With ganrun eval, the data set's folder is given as data_root=<folder>.)"
        raise UserError(text) from None


def located(dataset: dict, path: Path, data_root: str | None) -> dict:
    """The data set a file names, read from where the user says. A path inside a file from
    someone else is never written to: an export's data set is looked for in ``data_root``
    (default ``data/``, as ``ganrun train``'s), a checkpoint's in its own (absolute) root
    unless ``data_root`` is given, and never downloaded there."""
    from ganrun.inference.exports import is_export

    name = str(dataset.get("_target_", "?")).rsplit(".", 1)[-1]
    if data_root is not None:
        return {**dataset, "root": data_root}
    if is_export(path):
        root = to_absolute_path("data/")
        log.info("Data set: %s (named by the export) is read from %s, not from the path in the "
                 "export; data_root=<folder> reads it from elsewhere.", name, root)
        return {**dataset, "root": root}
    return {**dataset, "download": False} if "download" in dataset else dataset


def keep(path: Path, values: dict, images: dict) -> None:
    """Adds the values to the checkpoint's metrics file and writes the metrics' pictures
    (e.g. the mode-coverage scatter plot) beside it as ``<name>.<metric>.png``; a folder that
    cannot be written costs the record, not the result (it is printed either way)."""
    from torchvision.utils import save_image

    from ganrun.metrics.record import metrics_file, record_metrics

    file = metrics_file(path)
    try:
        log.info("Metrics recorded in %s", record_metrics(path, values))
        for name, image in images.items():
            picture = file.with_name(file.name.removesuffix("metrics.json") + f"{name}.png")
            save_image(image, picture)
            log.info("Wrote %s", picture)
    except OSError as err:
        log.warning("Could not keep the metrics in %s (%s); they are printed below only.",
                    file, err.strerror or err)


def refresh_card(folder: Path, model) -> None:
    """Writes an export's model card again with the metrics its folder records now."""
    from ganrun.inference.model_card import write_card
    from ganrun.inference.names import CONFIG
    from ganrun.metrics.record import read_metrics

    try:
        info = json.loads((folder / CONFIG).read_text())
        info["metrics"] = read_metrics(folder)
        write_card(model, info, folder, None)
        log.info("Updated the model card %s", folder / "README.md")
    except (OSError, ValueError, UserError) as err:
        log.warning("Could not update the model card in %s (%s).", folder, err)


def of_folders(real: str, fake: str, metrics: dict) -> dict:
    """Folders of images; ``real`` may instead be an .npz of FID statistics (mu, sigma)."""
    from ganrun.metrics.folders import batches, list_images
    from ganrun.metrics.stats import load_stats

    stats = load_stats(to_absolute_path(real)) if str(real).endswith(".npz") else None
    real_paths = [] if stats else list_images(to_absolute_path(real), "real")
    fake_paths = list_images(to_absolute_path(fake), "fake")
    values = {}
    for name, metric in metrics.items():
        if not hasattr(metric, "evaluate_folders"):
            raise UserError(f"The metric '{name}' needs a generator: use ckpt=PATH with it.")
        size = metric.batch_size
        if stats:
            values.update(metric.evaluate_against_statistics(stats, batches(fake_paths, size),
                                                             len(fake_paths)))
            continue
        values.update(metric.evaluate_folders(batches(real_paths, size), batches(fake_paths, size),
                                              len(real_paths), len(fake_paths)))
    return values


def task(cfg: DictConfig) -> None:
    try:
        values = evaluate(cfg)
    except Exception as exc:
        err = user_error_behind(exc)
        if err is None or os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"ganrun eval: error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(json.dumps(values), flush=True)


def main(argv: list[str]) -> None:
    quiet_library_noise()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    parser = hydra_args_parser()
    parser.prog = "ganrun eval"
    args = parser.parse_intermixed_args(argv)
    cfg = check_command_line(parser.prog, args, "eval")
    if args.help:
        return print_help(args, "eval")
    run_hydra(args, parser, task, str(config_dir()), "eval", composed_mode(cfg))
