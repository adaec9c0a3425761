"""Classification Accuracy Score (Ravuri & Vinyals 2019): how useful a class-conditional
generator's images are as training data.

- ``cas``: the small classifier of ``ganrun.metrics.classifier`` trained on ``num_samples``
  generated images only (a balanced mix of classes, labelled with the class asked for), scored
  on the real test split; ``cas_real``: the same classifier and recipe trained on as many real
  training images, the reference it is read against.
- Augmentation (``real_per_class``, e.g. [10, 100]): for each n, a seeded subset of exactly n
  real training images per class, trained on alone (``aug<n>_real``) and with
  ``synthetic_per_class`` generated images per class added (``aug<n>_mixed``).

Every accuracy is read on the whole test split, or on a seeded subset of ``test_samples`` of
its images (the same subset for every classifier of a call; a quicker, noisier reading).
"""

import torch

from ganrun.errors import UserError
from ganrun.inference.latents import balanced_labels
from ganrun.metrics.base import Metric
from ganrun.metrics.classifier import Recipe, batch, train
from ganrun.progress import track


class Images(torch.utils.data.Dataset):
    """Images and labels held in memory, served a batch at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]):
        return self.images[indices], self.labels[indices]


def seeded_pick(count: int, n: int, seed: int) -> torch.Tensor:
    """``n`` of ``range(count)`` (all when n >= count), the same ones for the same seed."""
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:n]


def real_subset(labels: torch.Tensor, per_class: int, num_classes: int, seed: int) -> torch.Tensor:
    """Indices of exactly ``per_class`` random examples of every class (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for k in range(num_classes):
        members = (labels == k).nonzero().flatten()
        if len(members) < per_class:
            raise UserError(f"The augmentation mode of the CAS metric asks for {per_class} real "
                            f"images of class {k}, but the training split has {len(members)}. "
                            "Lower metrics.evaluate.cas.real_per_class.")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen)


class ClassificationAccuracyScore(Metric):
    keys = ("cas", "cas_real")

    def __init__(self, num_samples: int = 10000, real_per_class: list[int] | None = None,
                 synthetic_per_class: int = 1000, steps: int = 500, batch_size: int = 128,
                 seed: int = 0, test_samples: int | None = None):
        if test_samples is not None and test_samples < 1:
            raise UserError(f"metrics.evaluate.cas.test_samples is {test_samples}; set a number "
                            "of test images >= 1, or null to score on the whole test split.")
        self.num_samples, self.real_per_class = num_samples, list(real_per_class or [])
        self.test_samples = test_samples
        self.synthetic_per_class = synthetic_per_class
        self.recipe = Recipe(steps=steps, batch_size=batch_size, seed=seed)

    def check_model(self, model) -> None:
        if model.sampler is None or model.sampler.num_classes < 2:
            raise UserError("The CAS metric trains a classifier on generated images labelled by "
                            "the class they were asked for, so it needs a class-conditional "
                            "generator (conditioning=embedding, projection or acgan on a "
                            f"labelled data set); this model is {model.kind}"
                            + ("" if model.sampler is None else " without classes")
                            + ". Drop metrics=cas for this model.")

    def evaluate_model(self, model, data) -> dict[str, float]:
        self.check_model(model)
        task, classes = model.sampler, model.sampler.num_classes
        test = self.test_images(self.split(data, "test"))
        train_split = self.split(data, "train")
        real_images, real_labels = self.all_images(train_split.dataset)
        fake_images, fake_labels = self.generated(task, classes, self.num_samples)
        values = {"cas": self.accuracy(Images(fake_images, fake_labels), data, test),
                  "cas_real": self.accuracy(self.real_sample(real_images, real_labels,
                                                             self.num_samples), data, test)}
        extra_images, extra_labels = self.generated(task, classes,
                                                    self.synthetic_per_class * classes)
        for n in self.real_per_class:
            chosen = real_subset(real_labels, n, classes, self.recipe.seed)
            subset = (real_images[chosen], real_labels[chosen])
            values[f"aug{n}_real"] = self.accuracy(Images(*subset), data, test)
            mixed = Images(torch.cat([subset[0], extra_images]),
                           torch.cat([subset[1], extra_labels]))
            values[f"aug{n}_mixed"] = self.accuracy(mixed, data, test)
        return values

    @staticmethod
    def split(data, name: str):
        split = data.with_split(name)
        split.drop_last = False
        split.setup()
        return split

    @staticmethod
    def all_images(dataset) -> tuple[torch.Tensor, torch.Tensor]:
        return batch(dataset, list(range(len(dataset))))

    def test_images(self, test) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images every classifier is scored on: all, or a seeded subset."""
        images, labels = self.all_images(test.dataset)
        if self.test_samples is None:
            return images, labels
        chosen = seeded_pick(len(labels), self.test_samples, self.recipe.seed + 1)
        return images[chosen], labels[chosen]

    def real_sample(self, images, labels, n: int) -> Images:
        chosen = seeded_pick(len(labels), n, self.recipe.seed)
        return Images(images[chosen], labels[chosen])

    @torch.no_grad()
    def generated(self, task, classes: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = balanced_labels(n, classes)
        parts = []
        with track("CAS samples", n, "img") as bar:
            for start in range(0, n, 500):
                part = labels[start:start + 500]
                z = torch.randn(len(part), task.latent_dim, device=task.device)
                parts.append(task.generate(z, part).cpu())
                bar.advance(len(part))
        return torch.cat(parts).clamp(-1, 1), labels

    def accuracy(self, training: Images, data, test) -> float:
        """Accuracy on ``test`` (images, labels) of the small classifier trained on
        ``training`` (fresh each time)."""
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = train(training, training.images.shape[1], data.num_classes, self.recipe, device)
        images, labels = test
        correct = 0
        with torch.no_grad():
            for start in range(0, len(labels), 1000):
                logits = model(images[start:start + 1000].to(device))
                correct += (logits.argmax(1).cpu() == labels[start:start + 1000]).sum().item()
        return correct / len(labels)
