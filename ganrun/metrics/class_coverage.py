"""Class coverage of a generator on a labelled image data set.

A small classifier trained on the real training split (``ganrun.metrics.classifier``, trained
once and cached) labels ``num_samples`` generated images; from its predictions:

- ``classes_covered``: the number of classes predicted for at least ``min_share`` of the
  samples (default 1%, a tenth of a class's expected share on 10 balanced classes). A share
  rather than "at least once" keeps a few misclassified samples from counting as a class.
- ``class_kl``: KL(generated || real) between the predicted class histogram and the real
  split's label histogram, in nats, as "KL(model || data)" in Metz et al. 2017 (stacked MNIST).
  0 for a generator with the real class balance, log(10) = 2.30 for one making a single class
  of 10 balanced ones. Both histograms get ``smoothing`` added to every class (then are
  renormalized), so a class absent from the real split keeps the value finite.
"""

from pathlib import Path

import torch

from ganrun.errors import UserError
from ganrun.metrics.base import Generate, GeneratorMetric
from ganrun.metrics.classifier import Recipe, real_classifier


def kl_divergence(p: torch.Tensor, q: torch.Tensor, smoothing: float) -> float:
    """KL(p || q) in nats of two histograms, each smoothed by ``smoothing`` per bin."""
    p = (p.double() + smoothing) / (p.double().sum() + smoothing * len(p))
    q = (q.double() + smoothing) / (q.double().sum() + smoothing * len(q))
    return float((p * (p / q).log()).sum())


class ClassCoverage(GeneratorMetric):
    keys = ("classes_covered", "class_kl")  # compared in TensorBoard's HParams tab

    def __init__(self, num_samples: int = 5000, min_share: float = 0.01,
                 smoothing: float = 1e-6, batch_size: int = 500, train_steps: int = 500,
                 train_batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                 cache_dir: str | None = None):
        if num_samples < 1 or batch_size < 1 or not 0 <= min_share <= 1 or not smoothing > 0:
            raise UserError(f"ClassCoverage needs num_samples >= 1, batch_size >= 1, min_share "
                            f"in [0, 1] and smoothing > 0; got num_samples={num_samples}, "
                            f"batch_size={batch_size}, min_share={min_share}, "
                            f"smoothing={smoothing}.")
        self.num_samples, self.min_share, self.smoothing = num_samples, min_share, smoothing
        self.batch_size = batch_size
        self.recipe = Recipe(steps=train_steps, batch_size=train_batch_size, lr=lr, seed=seed)
        self.cache_dir = cache_dir
        self._classifier = None  # (data module type and root, model, real histogram)

    def evaluate(self, generate: Generate, data) -> dict[str, float]:
        model, real_histogram = self.classifier(data)
        counts = self.predicted_counts(model, generate, data.num_classes)
        shares = counts.double() / counts.sum()
        return {"classes_covered": float((shares >= self.min_share).sum()),
                "class_kl": kl_divergence(shares, real_histogram, self.smoothing)}

    def classifier(self, data):
        if data.num_classes < 2:
            raise UserError(f"The class-coverage metric needs a labelled data set with at least "
                            f"2 classes, but {type(data).__name__} has {data.num_classes}. Use it "
                            "with mnist, fashion_mnist, cifar10 or an image_folder with class "
                            "sub-folders, or remove it from the metrics.")
        # Kept in memory too: a run evaluates every few thousand iterations on the same data.
        owner = (type(data), str(data.root), data.image_size, data.channels)
        if self._classifier is None or self._classifier[0] != owner:
            cache_dir = Path(self.cache_dir).expanduser() if self.cache_dir else None
            self._classifier = (owner, *real_classifier(
                data, self.recipe, cache_dir,
                steps_key="metrics.evaluate.class_coverage.train_steps"))
        return self._classifier[1], self._classifier[2]

    @torch.no_grad()
    def predicted_counts(self, model, generate: Generate, num_classes: int) -> torch.Tensor:
        counts = torch.zeros(num_classes, dtype=torch.long)
        for start in range(0, self.num_samples, self.batch_size):
            images = generate(min(self.batch_size, self.num_samples - start)).float()
            model = model.to(images.device)
            predictions = model(images).argmax(dim=1).cpu()
            counts += torch.bincount(predictions, minlength=num_classes)
        return counts
