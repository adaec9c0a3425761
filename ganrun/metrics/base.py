"""The interface every generator metric implements."""

from typing import Callable

import torch

from ganrun.data.base import GANDataModule

Generate = Callable[[int], torch.Tensor]


class GeneratorMetric:
    """Scores a generator against real data; built from a ``_target_`` in the ``metrics`` group.

    ``evaluate(generate, data)`` receives:

    - ``generate(n)``: ``n`` new samples in [-1, 1], shaped like the data (``(n, C, H, W)``),
      from the generator under evaluation (its EMA copy when there is one), without gradients;
    - ``data``: the run's data module (``data.with_split("test")`` serves another split).

    It returns ``{name: value}``: floats are logged as the scalar ``metrics/<name>``, float
    tensors ``(C, H, W)`` in [0, 1] as the image ``metrics/<name>``.
    """

    def evaluate(self, generate: Generate, data: GANDataModule) -> dict[str, float | torch.Tensor]:
        raise NotImplementedError


def evaluate_on_task(metric, task, data) -> dict[str, float]:
    """A metric of a trained task: translation metrics read the task itself (``evaluate_task``),
    generator metrics draw from the task's latent sampler."""
    if hasattr(metric, "evaluate_task"):
        return metric.evaluate_task(task, data)
    return metric.evaluate(task.metric_generator(), data)
