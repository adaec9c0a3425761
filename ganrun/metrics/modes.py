"""Mode coverage on the toy 2-D mixtures (``dataset=ring``, ``dataset=grid``).

The protocol of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN): draw
``num_samples`` generated points (2500 there) and assign each to its nearest mode centre.

- A sample is *high quality* if it lies within ``max_std`` (3) standard deviations of that
  centre; ``hq`` is the share of high-quality samples.
- A mode is *covered* if at least ``min_count`` (20, PacGAN's threshold for 2500 samples)
  high-quality samples fall on it; ``modes`` is the number of covered modes. Requiring a few
  samples, rather than one, keeps a stray point from counting as a recovered mode.

Distances are measured in units of the data's std, so the numbers do not depend on the scale
at which ganrun stores the mixture.
"""

import torch

from ganrun.errors import UserError
from ganrun.metrics.base import Generate, GeneratorMetric
from ganrun.scatter import scatter_image


def mode_statistics(points: torch.Tensor, centers: torch.Tensor, std: float,
                    max_std: float = 3.0, min_count: int = 20) -> dict[str, float]:
    """``modes`` covered and ``hq`` share for points (N, 2) around ``centers`` (K, 2)."""
    points = points.detach().float().cpu().reshape(len(points), -1)
    distances = torch.cdist(points, centers.float())  # (N, K)
    nearest, mode = distances.min(dim=1)
    good = nearest <= max_std * std
    counts = torch.bincount(mode[good], minlength=len(centers))
    return {"modes": float((counts >= min_count).sum()), "hq": good.float().mean().item()}


class ModeCoverage(GeneratorMetric):
    """``modes``, ``hq`` and a ``scatter`` image of real vs generated points, from the data
    module's mode ``centers`` and ``std`` (``ganrun.data.toy``)."""

    keys = ("modes", "hq")  # compared in TensorBoard's HParams tab

    def __init__(self, num_samples: int = 2500, min_count: int = 20, max_std: float = 3.0,
                 scatter: bool = True, num_real: int = 2500):
        if num_samples < 1 or min_count < 1 or not max_std > 0 or num_real < 0:
            raise UserError(f"ModeCoverage needs num_samples >= 1, min_count >= 1, max_std > 0 "
                            f"and num_real >= 0; got num_samples={num_samples}, min_count="
                            f"{min_count}, max_std={max_std}, num_real={num_real}.")
        self.num_samples, self.min_count, self.max_std = num_samples, min_count, max_std
        self.scatter, self.num_real = scatter, num_real

    def evaluate(self, generate: Generate, data) -> dict[str, float | torch.Tensor]:
        centers, std = self._modes_of(data)
        points = generate(self.num_samples).detach().float().cpu().flatten(1)
        if points.shape[1] != centers.shape[1]:
            raise UserError(f"ModeCoverage got {points.shape[1]}-dimensional samples for "
                            f"{centers.shape[1]}-dimensional data; the model does not fit the "
                            "data set.")
        results: dict[str, float | torch.Tensor] = dict(
            mode_statistics(points, centers, std, self.max_std, self.min_count))
        if self.scatter:
            real = data.real_points(self.num_real) if self.num_real else None
            results["scatter"] = scatter_image(points, real)
        return results

    @staticmethod
    def _modes_of(data) -> tuple[torch.Tensor, float]:
        centers, std = getattr(data, "centers", None), getattr(data, "std", None)
        if centers is None or std is None:
            raise UserError(f"The mode metrics (modes, hq) need a data set with known mode "
                            f"centres, but {type(data).__name__} has none. Use them with "
                            "dataset=ring or dataset=grid, or remove them from the metrics.")
        return centers, std
