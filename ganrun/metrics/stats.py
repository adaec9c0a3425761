"""FID statistics files: the mean and covariance of a set's Inception features in an ``.npz``.

The layout is the one people share: pytorch-fid's ``--save-stats`` and the TTUR repository's
``fid_stats_*.npz`` hold ``mu`` (2048,) and ``sigma`` (2048, 2048). FID needs nothing else from
the real side, so such a file replaces the Inception pass over the real images.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganrun.errors import UserError

NUM_FEATURES = 2048  # pool3 of the FID Inception


@dataclass
class Statistics:
    mu: torch.Tensor      # (D,) float64
    sigma: torch.Tensor   # (D, D) float64, unbiased (N - 1) covariance, as np.cov
    path: Path | None = None

    @classmethod
    def of(cls, features: torch.Tensor) -> "Statistics":
        features = features.double()
        return cls(features.mean(dim=0), torch.cov(features.T))


def save_stats(path: str | Path, features: torch.Tensor) -> Path:
    """pytorch-fid's layout: ``np.savez_compressed(path, mu=mu, sigma=sigma)``, float64."""
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError(f"The statistics file must end in .npz (pytorch-fid's format), got "
                        f"'{path}'. Write e.g. out={path.with_suffix('.npz')}.")
    stats = Statistics.of(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, mu=stats.mu.numpy(), sigma=stats.sigma.numpy())
    return path


def load_stats(path: str | Path) -> Statistics:
    """The file's ``mu`` and ``sigma``, checked: a UserError when they cannot be FID statistics
    of the FID Inception (missing, wrong shapes, NaN/inf, non-symmetric covariance)."""
    path = Path(path).expanduser()
    fix = ("Write one with `ganrun fid-stats <data set or folder> out=FILE.npz`, or use a "
           "pytorch-fid/TTUR statistics file of the 2048-d pool3 features.")
    if not path.is_file():
        raise UserError(f"The FID statistics file '{path}' does not exist. {fix}")
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {key: content[key] for key in ("mu", "sigma") if key in content}
            keys = list(content.keys())
    except Exception as err:
        raise UserError(f"'{path}' is not a readable .npz file ({type(err).__name__}: "
                        f"{str(err)[:150]}). {fix}") from None
    if set(arrays) != {"mu", "sigma"}:
        raise UserError(f"'{path}' holds {keys or 'no arrays'}, but FID statistics need `mu` "
                        f"and `sigma` arrays. {fix}")
    mu, sigma = arrays["mu"], arrays["sigma"]
    d = NUM_FEATURES
    if mu.shape != (d,) or sigma.shape != (d, d):
        raise UserError(f"'{path}' has mu of shape {mu.shape} and sigma of shape {sigma.shape}, "
                        f"but the FID Inception's statistics are mu ({d},) and sigma ({d}, {d}) "
                        f"(pool3 features; other layers' statistics cannot be compared). {fix}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UserError(f"'{path}' contains NaN or infinite values in mu or sigma: it was "
                        f"written from broken features. {fix}")
    if not np.allclose(sigma, sigma.T, rtol=1e-5, atol=1e-8):
        raise UserError(f"'{path}': sigma is not symmetric, so it is not a covariance matrix. "
                        f"{fix}")
    return Statistics(torch.from_numpy(mu.astype(np.float64)),
                      torch.from_numpy(sigma.astype(np.float64)), path)
