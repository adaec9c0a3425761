"""The scores computed from Inception features: FID, KID and IS by torchmetrics' own code (FID
of fewer samples than feature dimensions by the same formula in n x n form: ``low_rank_fid``).

Each score is built by ``hydra.utils.instantiate`` from an entry of ``InceptionMetrics.scores``
and receives the real pool features (or, for FID, the real set's ``Statistics`` read from a
statistics file) and the generated samples' features.
"""

import torch

from ganrun.errors import UserError
from ganrun.metrics.inception import Features
from ganrun.metrics.precomputed import Precomputed
from ganrun.metrics.stats import Statistics

# Computed on one process (see ganrun.callbacks.metrics): no cross-rank gather inside compute().
LOCAL = {"sync_on_compute": False}


class FeatureScore:
    needs_logits = False  # True: the Inception's classifier head is required
    needs_real_features = True  # False: the real set's mean and covariance are enough
    keys: tuple[str, ...] = ()  # headline values, compared in TensorBoard's HParams tab

    def min_samples(self) -> int:
        return 2

    def __call__(self, real: torch.Tensor, fake: Features) -> dict[str, float]:
        raise NotImplementedError


class FID(FeatureScore):
    """Fréchet Inception Distance (Heusel et al. 2017) with float64 statistics."""

    keys = ("fid",)
    needs_real_features = False

    def __call__(self, real, fake):
        from torchmetrics.image.fid import FrechetInceptionDistance

        if len(fake.pool) <= fake.pool.shape[1]:
            return {"fid": low_rank_fid(real, fake.pool.double())}
        metric = FrechetInceptionDistance(feature=Precomputed(fake.pool.shape[1]), **LOCAL)
        # float64 features: torchmetrics returns the FID in its input's dtype.
        metric.update(fake.pool.double(), real=False)
        if isinstance(real, Statistics):
            set_real_statistics(metric, real)
        else:
            metric.update(real.double(), real=True)
        return {"fid": float(metric.compute())}


def low_rank_fid(real, fake: torch.Tensor) -> float:
    """FID when the generated samples are no more than the feature dimensions (2,048): their
    covariance is A^T A with A the n x d centred features / sqrt(n - 1), and the nonzero
    eigenvalues of A^T A S_real are those of the symmetric n x n matrix A S_real A^T. The same
    formula as torchmetrics' eigenvalues of the d x d product, in milliseconds instead of
    seconds, and without the noise that its d - n zero eigenvalues add to the trace."""
    stats = real if isinstance(real, Statistics) else Statistics.of(real)
    mu_real, sigma_real = stats.mu.double(), stats.sigma.double()
    mu_fake = fake.mean(0)
    a = (fake - mu_fake) / (len(fake) - 1) ** 0.5
    cross = torch.linalg.eigvalsh(a @ sigma_real @ a.T).clamp(min=0).sqrt().sum()
    return float((mu_fake - mu_real).square().sum() + a.square().sum() + sigma_real.trace()
                 - 2 * cross)


def set_real_statistics(metric, stats: Statistics) -> None:
    """torchmetrics' FID state (sums over the real features) that gives back ``stats.mu`` and
    ``stats.sigma`` in ``compute()``; any count >= 2 does, as compute() divides it out again."""
    n = 2
    metric.real_features_sum = stats.mu * n
    metric.real_features_cov_sum = stats.sigma * (n - 1) + n * torch.outer(stats.mu, stats.mu)
    metric.real_features_num_samples = torch.tensor(n, dtype=torch.long)


class KID(FeatureScore):
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std over random subsets."""

    keys = ("kid",)

    def __init__(self, subsets: int = 100, subset_size: int = 1000):
        self.subsets, self.subset_size = subsets, subset_size

    def min_samples(self) -> int:
        return self.subset_size

    def __call__(self, real, fake):
        from torchmetrics.image.kid import KernelInceptionDistance

        metric = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=self.subsets,
                                         subset_size=self.subset_size, **LOCAL)
        metric.update(real.double(), real=True)
        metric.update(fake.pool.double(), real=False)
        mean, std = metric.compute()
        return {"kid": float(mean), "kid_std": float(std)}


class InceptionScore(FeatureScore):
    """Inception Score (Salimans et al. 2016) of the generated samples: mean and std over splits."""

    keys = ("is",)
    needs_logits = True

    def __init__(self, splits: int = 10):
        self.splits = splits

    def min_samples(self) -> int:
        return self.splits

    def __call__(self, real, fake):
        from torchmetrics.image.inception import InceptionScore as TorchmetricsIS

        metric = TorchmetricsIS(feature=Precomputed(fake.logits.shape[1]), splits=self.splits,
                                **LOCAL)
        metric.update(fake.logits.double())
        mean, std = metric.compute()
        return {"is": float(mean), "is_std": float(std)}


def check_statistics(scores: list[FeatureScore], stats: Statistics) -> None:
    """A UserError when a score needs the real features themselves, not their statistics."""
    others = [type(score).__name__ for score in scores if score.needs_real_features]
    if others:
        raise UserError(
            f"{', '.join(others)} cannot be computed from the statistics file {stats.path}: a "
            "statistics file holds only the mean and covariance of the real features (mu, "
            "sigma), which is all FID needs, while KID and precision/recall compare individual "
            "features. Use metrics=fid with a statistics file, or drop real_stats / the .npz "
            "and let ganrun compute (and cache) the real features.")


def check_counts(scores: list[FeatureScore], num_samples: int, real_samples: int, where: str):
    """A UserError, before any image is generated, when a score cannot use this many samples."""
    for score in scores:
        need = score.min_samples()
        for count, what in ((num_samples, "num_samples"), (real_samples, "real samples")):
            if count < need:
                raise UserError(
                    f"{type(score).__name__} needs at least {need} samples per side, but the "
                    f"evaluation has {count} {what} ({where}). Raise num_samples (and the number "
                    "of real images), or lower the score's requirement (KID: subset_size, "
                    "IS: splits, precision/recall: k).")
