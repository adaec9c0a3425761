"""Whether generated images match their text (task=text2image), on the test split's captions.

- ``fid``: images generated from the first ``num_samples`` test captions against the test
  images of those captions;
- ``r_precision``: for each generated image, whether its own caption ranks first among
  ``r_candidates`` test captions (its own and others drawn at random) by the cosine of the
  model's contrastive image and text encoders (as AttnGAN and DF-GAN report it with DAMSM);
  ``r_precision_real`` the same for the real images (the encoders' ceiling);
- for ``dataset=fashion_captions``: ``class_accuracy``, a classifier of real Fashion-MNIST
  images (trained once, cached) on the generated images against the class their caption names,
  and ``attribute_accuracy``, the share of caption attributes (dark/light, small/large,
  plain/patterned) the generated images show, measured by the function that wrote the
  captions; both with ``_real`` (the real test images: the ceiling) and ``_held_out`` (only
  the captions of the combinations training never saw).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ganrun.metrics.base import Metric, not_measured
from ganrun.metrics.classifier import Recipe, real_classifier
from ganrun.metrics.suite import fids_against
from ganrun.progress import track


class TextMatch(Metric):
    keys = ("fid", "r_precision", "class_accuracy", "attribute_accuracy")

    def __init__(self, num_samples: int = 1000, batch_size: int = 100, r_candidates: int = 100,
                 fid: bool = True, classifier_steps: int = 1000, cache_dir: str | None = None):
        self.num_samples, self.batch_size = num_samples, batch_size
        self.r_candidates, self.fid = r_candidates, fid
        self.recipe = Recipe(steps=classifier_steps)
        self.cache_dir = cache_dir
        self.counts: dict[str, int] = {}

    def check_model(self, model) -> None:
        from ganrun.tasks.text2image import TextSampler

        if not isinstance(model.sampler, TextSampler):
            raise not_measured("metrics=text_match", model,
                               "a text-to-image generator (task=text2image)")

    def evaluate_model(self, model, data) -> dict[str, float]:
        self.check_model(model)
        sampler = model.sampler
        test = data.captions("test")
        n = min(self.num_samples, len(test))
        captions = test.captions[:n]
        real = torch.stack([test.image(test.image_of[i]) for i in range(n)])
        fake = self.generate(sampler, captions)
        values: dict[str, float] = {"num_samples": n}
        if self.fid:
            values.update(fids_against(real, {"fid": fake}, self.batch_size, "Test features",
                                       sampler.device, cache_key=test_key(data, n),
                                       cache_dir=self.cache_dir))
            self.counts = {"num_samples": n, "real_samples": n}
        values.update(self.r_precision(sampler, test, captions, fake, real))
        if hasattr(data, "thresholds"):  # captions written from measured attributes
            values.update(self.fashion(data, test, n, fake, real))
        return values

    def generate(self, sampler, captions: list[str]) -> torch.Tensor:
        parts = []
        with track("Text-to-image samples", len(captions), "img", hint="num_samples=N") as bar:
            for start in range(0, len(captions), self.batch_size):
                part = captions[start:start + self.batch_size]
                z = torch.randn(len(part), sampler.latent_dim, device=sampler.device)
                parts.append(sampler.generate(z, part).cpu())
                bar.advance(len(part))
        return torch.cat(parts)

    @torch.no_grad()
    def r_precision(self, sampler, test, captions, fake, real) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        texts = F.normalize(torch.cat([sampler.embed(list(test.captions[i:i + 500]))
                                       for i in range(0, len(test), 500)]).cpu(), dim=1)
        k = min(self.r_candidates, len(test))
        values = {}
        for name, images in (("r_precision", fake), ("r_precision_real", real)):
            vectors = F.normalize(torch.cat([sampler.image_features(part).cpu()
                                             for part in images.split(self.batch_size)]), dim=1)
            hits = 0
            for i, vector in enumerate(vectors):
                others = torch.randperm(len(test), generator=generator)[:k]
                others = others[others != i][:k - 1]
                scores = texts[torch.cat([torch.tensor([i]), others])] @ vector
                hits += int(scores.argmax() == 0)
            values[name] = hits / len(vectors)
        return values

    def fashion(self, data, test, n: int, fake, real) -> dict[str, float]:
        """Class and attribute accuracies of fashion_captions, overall and held out."""
        from ganrun.data.captions import ATTRIBUTES, measure_attributes
        from ganrun.data.mnist import FashionMNIST

        labels = test.labels[:n]
        held = test.held_out[:n]
        thresholds = data.thresholds()
        classifier = self.classifier(FashionMNIST(root=str(data.root), download=False))
        wanted = measure_attributes(real, labels, thresholds)  # what the captions say
        values = {}
        for suffix, images in (("", fake), ("_real", real)):
            with torch.no_grad():
                predicted = torch.cat([classifier(part).argmax(1)
                                       for part in images.split(self.batch_size)])
            shown = measure_attributes(images, labels, thresholds)
            right = torch.stack([shown[a] == wanted[a] for a in ATTRIBUTES]).float()  # (3, n)
            for scope, mask in (("", torch.ones_like(held)), ("_held_out", held)):
                if mask.any():
                    values[f"class_accuracy{scope}{suffix}"] = \
                        (predicted == labels)[mask].float().mean().item()
                    values[f"attribute_accuracy{scope}{suffix}"] = right[:, mask].mean().item()
        values["held_out_samples"] = int(held.sum())
        return values

    def classifier(self, data):
        cache_dir = Path(self.cache_dir).expanduser() if self.cache_dir else None
        model, _ = real_classifier(data, self.recipe, cache_dir, torch.device("cpu"),
                                   steps_key="metrics.evaluate.text_match.classifier_steps")
        return model.eval()


def test_key(data, n: int) -> dict:
    return {"dataset": f"{type(data).__module__}.{type(data).__qualname__}",
            "root": str(data.root.resolve()), "split": "test", "image_size": data.image_size,
            "channels": data.channels, "subset": "first n", "num": n}
