"""``ganrun eval``: metrics of a checkpoint, or between two folders of images, as JSON."""

import json
import logging
import os
import sys
from pathlib import Path

import torch
from hydra._internal.utils import _run_hydra, get_args_parser
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig

from ganrun.config import config_dir
from ganrun.errors import UserError
from ganrun.train import _quiet_library_noise, _user_error

log = logging.getLogger("ganrun")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if bool(cfg.ckpt) == bool(cfg.real or cfg.fake) or bool(cfg.real) != bool(cfg.fake):
        raise UserError("Give either ckpt=PATH (a checkpoint of `ganrun train`) or both "
                        "real=DIR and fake=DIR (two folders of images), e.g. `ganrun eval "
                        "ckpt=outputs/<date>/<time>/checkpoints/last.ckpt`.")
    metrics = instantiate(cfg.metrics.evaluate)
    if not metrics:
        raise UserError("No metric is selected (metrics=none). Choose some, e.g. metrics=fid.")
    device = torch.device(pick_device(cfg.device))
    if cfg.ckpt:
        values = of_checkpoint(Path(to_absolute_path(cfg.ckpt)), metrics, device, cfg.seed)
    else:
        values = of_folders(cfg.real, cfg.fake, metrics)
    return values


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def of_checkpoint(path: Path, metrics: dict, device: torch.device, seed: int) -> dict:
    from ganrun.checkpoints import load_gan

    module, cfg = load_gan(path, device)
    data = instantiate(cfg.dataset)  # its root was saved absolute: works from any folder
    values = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for metric in metrics.values():
            values.update(metric.evaluate(lambda n: module.generate(module.sample_z(n)), data))
    (path.parent / "metrics.json").write_text(json.dumps(values, indent=2) + "\n")
    return values


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
        err = _user_error(exc)
        if err is None or os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"ganrun eval: error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(json.dumps(values), flush=True)


def main(argv: list[str]) -> None:
    _quiet_library_noise()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    parser = get_args_parser()
    parser.prog = "ganrun eval"
    args = parser.parse_intermixed_args(argv)
    _run_hydra(args=args, args_parser=parser, task_function=task,
               config_path=str(config_dir()), config_name="eval")
