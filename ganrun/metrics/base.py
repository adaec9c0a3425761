"""The interface every metric implements: it is given a trained model's inference object
(``ganrun.inference.model``: a sampler or a translator, whatever the task) and the data."""

from typing import Callable

import torch

from ganrun.data.base import GANDataModule
from ganrun.errors import UserError

Generate = Callable[[int], torch.Tensor]


class Metric:
    """Base class: ``check_model`` says, before any data is read or any image made, whether
    the model is one this metric measures; ``evaluate_model`` measures it. Values: floats
    are logged as the scalar ``metrics/<name>``, float tensors ``(C, H, W)`` in [0, 1] as the
    image ``metrics/<name>``."""

    name = "this metric"

    def check_model(self, model) -> None:
        raise NotImplementedError

    def evaluate_model(self, model, data: GANDataModule) -> dict[str, float | torch.Tensor]:
        raise NotImplementedError


def not_measured(metric: str, model, needs: str) -> UserError:
    return UserError(f"{metric} measures {needs}; this model is {model.kind}. Use "
                     f"metrics={model.default_metrics} (its own metrics) or metrics=none.")


class GeneratorMetric(Metric):
    """Scores a generator against real data; built from a ``_target_`` in the ``metrics`` group.

    ``evaluate(generate, data)`` receives:

    - ``generate(n)``: ``n`` new samples in [-1, 1], shaped like the data (``(n, C, H, W)``),
      from the generator under evaluation (its EMA copy when there is one), without gradients;
    - ``data``: the run's data module (``data.with_split("test")`` serves another split).
    """

    def check_model(self, model) -> None:
        if model.sampler is None:
            raise not_measured(f"metrics={type(self).__name__}", model,
                               "a generator of images (FID, KID, IS, precision/recall, ...)")

    def evaluate_model(self, model, data: GANDataModule):
        self.check_model(model)
        return self.evaluate(model.sampler.metric_samples(), data)

    def evaluate(self, generate: Generate, data: GANDataModule) -> dict[str, float | torch.Tensor]:
        raise NotImplementedError
