"""How good a translator (CycleGAN) is, on the test split of two domains.

- FID of translated test A images against real test B images (``fid_ab``), next to the FID
  of the untranslated test A images against the same test B images (``fid_identity``): the
  baseline a translator has to beat.
- For labelled domains (``dataset=fashion_domains``): label preservation, the accuracy of a
  classifier trained on real domain B images on translated A images, whose labels are A's
  (``label_preservation``), next to the same classifier on untranslated A
  (``label_preservation_identity``) and on real test B (``label_accuracy_b``, its ceiling).
  These use every test image (``label_samples`` per domain): a classifier pass is cheap, and on
  1,000 images an accuracy still moves by about a point from one draw to the next.
"""

from pathlib import Path

import torch

from ganrun.metrics.base import Metric, not_measured
from ganrun.metrics.classifier import Recipe, real_classifier
from ganrun.metrics.suite import fids_against


class TranslationMetrics(Metric):
    """Evaluated on an unpaired translator (A -> B and B -> A), not on a latent sampler.
    (A plain class: inside Hydra's instantiated config a dataclass would become a config.)"""

    def __init__(self, num_samples: int = 1000, batch_size: int = 100,
                 classifier_steps: int = 4000, classifier_cosine: bool = True,
                 classifier_flip: bool = True, cache_dir: str | None = None):
        self.num_samples = num_samples  # test images per domain
        self.batch_size, self.cache_dir = batch_size, cache_dir
        self.recipe = Recipe(steps=classifier_steps, cosine=classifier_cosine,
                             flip=classifier_flip)
        self._classifier = None  # trained once (then cached on disk); every evaluation reuses it
        self.device = torch.device("cpu")  # the translator's: Inception and classifier run there

    def check_model(self, model) -> None:
        translator = model.translator
        if translator is None or set(translator.directions) != {"AtoB", "BtoA"}:
            raise not_measured("metrics=translation", model,
                               "an unpaired translator between two domains (task=cyclegan)")

    def evaluate_model(self, model, data) -> dict[str, float]:
        self.check_model(model)
        task = model.translator
        test = data.with_split("test")
        test.drop_last = False
        test.setup()
        n = min(self.num_samples, test.dataset.size_a, test.dataset.size_b)
        batch = test.dataset.fixed_items(n)
        real_a, real_b = batch["A"], batch["B"]
        self.device = task.device
        fake_b = self.translate(task, real_a)
        # Test B's features are cached: the next evaluation (another checkpoint) reads them.
        values = fids_against(real_b, {"fid_ab": fake_b, "fid_identity": real_a},
                              self.batch_size, "Test B features", self.device,
                              cache_key=test_b_key(data), cache_dir=self.cache_dir)
        if data.num_classes:
            values.update(self.label_preservation(data, task, test.dataset, fake_b))
        return {**values, "num_samples": n}

    def translate(self, task, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([task.translate(part.to(self.device)).cpu()
                          for part in images.split(self.batch_size)])

    def label_preservation(self, data, task, items, fake_b: torch.Tensor) -> dict[str, float]:
        """On every test image; ``fake_b`` (G_AB of the first test A images, for the FID) is
        reused rather than translated again."""
        classifier = self.domain_b_classifier(data)

        def accuracy(images, labels) -> float:
            with torch.no_grad():
                predicted = torch.cat([classifier(part.to(self.device)).argmax(1).cpu()
                                       for part in images.split(self.batch_size)])
            return (predicted == labels).float().mean().item()

        test_a, test_b = items.fixed_items(items.size_a), items.fixed_items(items.size_b)
        real_a, label_a = test_a["A"], test_a["label_A"]
        translated = torch.cat([fake_b, self.translate(task, real_a[len(fake_b):])])
        values = {"label_preservation": accuracy(translated, label_a),
                  "label_accuracy_b": accuracy(test_b["B"], test_b["label_B"]),
                  "label_samples": len(real_a)}
        if data.channels_a == data.channels_b:
            values["label_preservation_identity"] = accuracy(real_a, label_a)
        return values

    def domain_b_classifier(self, data):
        if self._classifier is None:
            cache_dir = Path(self.cache_dir).expanduser() if self.cache_dir else None
            self._classifier, _ = real_classifier(data, self.recipe, cache_dir, self.device,
                                                  steps_key="metrics.evaluate.translation."
                                                            "classifier_steps",
                                                  domain="B")
        return self._classifier.to(self.device)


def test_b_key(data) -> dict:
    """What decides the test B images: the data set, where it is, its appearance change."""
    return {"dataset": f"{type(data).__module__}.{type(data).__qualname__}",
            "root": str(data.root.resolve()), "split": "test", "domain": "B",
            "image_size": data.image_size, "transform": getattr(data, "transform", None),
            "source": getattr(data, "source", None), "subset": "first n"}
