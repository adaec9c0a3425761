"""``ganrun fid-stats SOURCE out=FILE.npz``: the FID statistics of a real set, in the ``.npz``
layout that pytorch-fid and TTUR share, to use later with ``real=FILE.npz`` /
``metrics.real_stats=FILE.npz`` instead of an Inception pass over the real images."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ganrun.errors import UserError
from ganrun.commands.keyvalue import parse

if TYPE_CHECKING:
    import torch

PROG = "ganrun fid-stats"

HELP = """usage: ganrun fid-stats SOURCE out=FILE.npz [key=value ...]

Writes the FID statistics (mean `mu` and covariance `sigma` of the 2048-d Inception pool3
features, float64) of a real set as an .npz in pytorch-fid's --save-stats layout. Use it with
`ganrun eval real=FILE.npz fake=DIR` or `ganrun train metrics=fid metrics.real_stats=FILE.npz`.

SOURCE is a folder of images (any size, grayscale or RGB), or a data set of ganrun train
(fashion_mnist, mnist, cifar10, celeba, image_folder): its features come from ganrun's
real-feature cache when a training run or `ganrun eval` computed them already, else from a fresh
Inception pass (then cached for next time).

keys:
  out=FILE.npz        output file (required)
  root=null           data set: its folder (default: its config's, e.g. data/)
  split=test          data set: which split
  real_samples=null   data set: a fixed random subset of this many images (null: all), the
                      same subset as metrics.real_samples uses
  image_size=null     data set: resize to this size first (null: the data set's default)
  batch_size=100      images per Inception pass
  device=auto         auto (a GPU when there is one), cpu, cuda, ...
  cache_dir=~/.cache/ganrun   real-feature cache ($GANRUN_CACHE_DIR when set)
  overwrite=false     replace an existing `out` file instead of refusing

Examples:
  ganrun fid-stats fashion_mnist root=/usr/share/datasets/fashion-mnist out=fmnist_test.npz
  ganrun fid-stats path/to/images out=stats.npz
"""


@dataclass
class FidStatsConfig:
    out: Optional[str] = None
    root: Optional[str] = None
    split: str = "test"
    real_samples: Optional[int] = None
    image_size: Optional[int] = None
    batch_size: int = 100
    device: str = "auto"
    cache_dir: str = os.environ.get("GANRUN_CACHE_DIR", "~/.cache/ganrun")
    overwrite: bool = False


def dataset_names() -> list[str]:
    from ganrun.config import config_dir

    return sorted(path.stem for path in (config_dir() / "dataset").glob("*.yaml"))


def load_dataset(name: str, cfg):
    """The data set as `ganrun train dataset=NAME dataset.root=...` builds it."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ganrun.config import allow_building, config_dir

    node = OmegaConf.load(config_dir() / "dataset" / f"{name}.yaml")
    if cfg.root:
        node.root = str(Path(cfg.root).expanduser().resolve())
    if cfg.image_size:
        node.image_size = cfg.image_size
    node.batch_size = 1  # training batches are not used here; any split size is fine
    full = OmegaConf.create({"paths": {"data_dir": "data/"}, "dataset": node})
    if OmegaConf.is_missing(full.dataset, "root"):
        raise UserError(f"{PROG}: the data set '{name}' needs root=<folder of images>.")
    allow_building(str(node._target_))  # one of ganrun's own data set options
    return instantiate(full.dataset)


def features(source: str, cfg) -> tuple[torch.Tensor, str]:
    """The real features of SOURCE and a description of what they are."""
    from ganrun.runner.devices import pick_device
    from ganrun.metrics.folders import batches, list_images
    from ganrun.metrics.suite import InceptionMetrics

    suite = InceptionMetrics({}, real_samples=cfg.real_samples, split=cfg.split,
                             batch_size=cfg.batch_size, cache_dir=cfg.cache_dir)
    device = pick_device(cfg.device, PROG)
    if Path(source).expanduser().is_dir():
        paths = list_images(source, "source")
        images = (batch.to(device) for batch in batches(paths, cfg.batch_size))
        pool = suite.extract(images, "Features", len(paths), "a GPU").pool
        return pool, f"{len(paths)} images of {source}"
    if source not in dataset_names():
        raise UserError(f"{PROG}: '{source}' is neither a folder nor a data set. Give a folder of "
                        f"images or one of: {', '.join(dataset_names())} (with root=<folder>).")
    data = load_dataset(source, cfg)
    real_data, n_real = suite.check(data)
    suite.device = device
    what = f"{n_real} images of {source}'s {cfg.split} split"
    return suite.real_features(real_data, n_real), what


def run(argv: list[str]) -> Path:
    from ganrun.inference.imagefiles import prepare_folder
    from ganrun.metrics.inception import quiet_torch_fidelity
    from ganrun.metrics.stats import save_stats

    positional = [arg for arg in argv if "=" not in arg]
    if len(positional) != 1:
        raise UserError(f"{PROG}: give exactly one SOURCE (a folder of images or a data set "
                        f"name) and out=FILE.npz, e.g. `{PROG} fashion_mnist "
                        "root=/usr/share/datasets/fashion-mnist out=fmnist_test.npz`.")
    cfg = parse([arg for arg in argv if "=" in arg], FidStatsConfig, PROG)
    if not cfg.out:
        raise UserError(f"{PROG}: no output file given. Add out=FILE.npz.")
    if not cfg.out.endswith(".npz"):
        raise UserError(f"{PROG}: out={cfg.out} must end in .npz (pytorch-fid's layout), e.g. "
                        f"out={Path(cfg.out).with_suffix('.npz')}.")
    out = Path(cfg.out).expanduser()
    prepare_folder(out.parent, [out.name], cfg.overwrite)  # before minutes of Inception passes
    quiet_torch_fidelity()
    feats, what = features(positional[0], cfg)
    if len(feats) < 2:
        raise UserError(f"{PROG}: {what}: a covariance needs at least 2 images.")
    path = save_stats(out, feats)
    print(f"Wrote the FID statistics (mu, sigma) of {what} to {path}", flush=True)
    return path


def main(argv: list[str]) -> None:
    import logging

    if any(arg in ("-h", "--help") for arg in argv):
        print(HELP)
        return
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        run(argv)
    except UserError as err:
        if os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"{PROG}: error: {str(err).removeprefix(PROG + ': ')}", file=sys.stderr, flush=True)
        sys.exit(2)
