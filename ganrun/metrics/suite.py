"""``InceptionMetrics``: FID, KID, IS and precision/recall from one Inception pass per image."""

import logging
from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Subset

from ganrun.data.base import GANDataModule, keep_batch
from ganrun.metrics.base import Generate, GeneratorMetric
from ganrun.metrics.cache import FeatureCache
from ganrun.metrics.inception import (NETWORK, RESIZE, Features, InceptionFeatures,
                                      shared_features, to_uint8, weights_digest)
from ganrun.metrics.scores import FID, FeatureScore, check_counts, check_statistics
from ganrun.metrics.stats import Statistics, load_stats
from ganrun.progress import track

log = logging.getLogger("ganrun")


# What shortens each pass, for the estimate line of a long one (see ganrun.progress).
REAL_HINT = ("metrics.real_samples=N (a fixed random subset of the real images; computed once, "
             "then cached), metrics.real_stats=FILE.npz (no real pass), or a GPU")
GENERATED_HINT = "num_samples=N (metrics.num_samples in training), or a GPU"


class InceptionMetrics(GeneratorMetric):
    """Scores ``num_samples`` generated images against ``real_samples`` images of the ``split``
    (all of it when null), with every score in ``scores`` ({name: FeatureScore}).

    The real features are computed once and cached in ``cache_dir``; the Inception is loaded on
    first use, kept, and run on the device the generated images come from. With ``real_stats``
    (an ``.npz`` of ``mu`` and ``sigma``, see ``ganrun.metrics.stats``) FID reads the real side
    from that file and the real images are never passed through the Inception."""

    def __init__(self, scores: dict[str, FeatureScore], num_samples: int = 10000,
                 real_samples: int | None = None, split: str = "test", batch_size: int = 100,
                 cache_dir: str = "~/.cache/ganrun", real_stats: str | None = None):
        # A mapping in the config, so that one score can be tuned or removed by its name.
        self.scores = list(scores.values()) if hasattr(scores, "values") else list(scores)
        self.num_samples, self.real_samples, self.split = num_samples, real_samples, split
        self.batch_size = batch_size
        self.cache = FeatureCache(f"{cache_dir}/real_features")
        self._network: InceptionFeatures | None = None
        self.device = torch.device("cpu")  # where the real images go: the generator's device
        self.real_passes = 0  # how many times the real images went through the network
        self.counts: dict[str, int] = {}  # images of the last evaluation, recorded with FID
        self.real_stats = real_stats

    @property
    def keys(self) -> list[str]:
        """The names of the headline values, for the HParams tab."""
        return [key for score in self.scores for key in score.keys]

    def network(self, device: torch.device | str) -> InceptionFeatures:
        if self._network is None:
            logits = any(score.needs_logits for score in self.scores)
            self._network = shared_features(logits, device)
        return self._network.to(device)

    def statistics(self) -> Statistics:
        """The real side read from ``real_stats``; a UserError for a bad file or for a score
        that needs the real features themselves."""
        stats = load_stats(self.real_stats)
        check_statistics(self.scores, stats)
        return stats

    def check(self, data: GANDataModule) -> tuple[GANDataModule, int]:
        """The real split's data module and image count; a UserError if a score cannot work
        with the sample counts, or the Inception's weights cannot be had (called before
        training, so that a run does not fail later)."""
        from ganrun.metrics.weights import ensure_weights

        if getattr(self, "_network", None) is None:  # the Inception is still to be built
            ensure_weights()
        if self.real_stats:
            self.statistics()
            check_counts(self.scores, self.num_samples, self.num_samples, self.real_stats)
            return data, 0
        real_data = data.with_split(self.split)
        real_data.prepare_data()
        real_data.setup()
        n_real = min(self.real_samples or len(real_data.dataset), len(real_data.dataset))
        check_counts(self.scores, self.num_samples, n_real,
                     f"{self.split} split of {type(data).__name__}")
        return real_data, n_real

    def evaluate(self, generate: Generate, data: GANDataModule) -> dict[str, float]:
        real_data, n_real = self.check(data)
        self.counts = {"num_samples": self.num_samples, "real_samples": n_real}
        # The whole evaluation's cost is said before its first pass: the real pass that follows
        # the fake one counts in the fake pass's estimate line.
        pending = 0 if self.real_stats or self.cache.path(self.cache_key(real_data, n_real))\
            .is_file() else n_real
        fake = self.extract((to_uint8(self.on_device(generate(n)))
                             for n in self.chunks(self.num_samples)),
                            "Fake features", self.num_samples, GENERATED_HINT,
                            then=(pending, "real images not cached yet"))
        if self.real_stats:
            return self.score(self.statistics(), fake)
        real = self.real_features(real_data, n_real)
        return self.score(real, fake)

    def evaluate_against_statistics(self, stats: Statistics, fake: Iterable[torch.Tensor],
                                    n_fake: int) -> dict[str, float]:
        """Scores of batches of uint8 RGB images against a statistics file's real side."""
        check_statistics(self.scores, stats)
        check_counts(self.scores, n_fake, n_fake, "the fake folder")
        # The real count is not in a statistics file: named as the file.
        self.counts = {"num_samples": n_fake, "real_samples": f"the statistics of {stats.path}"}
        return self.score(stats, self.extract(fake, "Fake features", n_fake))

    def evaluate_folders(self, real: Iterable[torch.Tensor], fake: Iterable[torch.Tensor],
                         n_real: int, n_fake: int) -> dict[str, float]:
        """Scores between two sets of uint8 RGB batches (not cached: folders change)."""
        check_counts(self.scores, n_fake, n_real, "the two folders")
        self.counts = {"num_samples": n_fake, "real_samples": n_real}
        return self.score(self.extract(real, "Real features", n_real).pool,
                          self.extract(fake, "Fake features", n_fake))

    def on_device(self, images: torch.Tensor) -> torch.Tensor:
        self.device = images.device
        return images

    def score(self, real: torch.Tensor | Statistics, fake: Features) -> dict[str, float]:
        values = {}
        for score in self.scores:
            values.update(score(real, fake))
        return values

    def chunks(self, total: int) -> Iterator[int]:
        for start in range(0, total, self.batch_size):
            yield min(self.batch_size, total - start)

    def extract(self, batches: Iterable[torch.Tensor], description: str | None = None,
                total: int = 0, hint: str | None = None,
                then: tuple[int, str] = (0, "")) -> Features:
        """Features of batches of uint8 RGB images, in one network pass each; with a
        ``description``, the pass shows its progress (``total`` images)."""
        if description is None:
            parts = [self.network(images.device)(images) for images in batches]
        else:
            parts = []
            with track(description, total, "img", hint, then=then) as bar:
                for images in batches:
                    parts.append(self.network(images.device)(images))
                    bar.advance(len(images))
        logits = [p.logits for p in parts if p.logits is not None]
        return Features(torch.cat([p.pool for p in parts]),
                        torch.cat(logits) if logits else None)

    def real_features(self, data: GANDataModule, n: int) -> torch.Tensor:
        key = self.cache_key(data, n)
        with self.cache.lock(key):  # a concurrent evaluation waits and reads this one's cache
            features = self.cache.load(key)
            if features is None:
                features = self.extract((to_uint8(images.to(self.device)) for images in
                                         self.real_batches(data, n)),
                                        "Real features", n, REAL_HINT).pool
                self.real_passes += 1
                saved = self.cache.save(key, features)
                log.info("Real features: computed for %d images of the %s split%s", n,
                         data.split, f"; cached for next time in {saved}" if saved else "")
        return features

    def real_batches(self, data: GANDataModule, n: int) -> Iterator[torch.Tensor]:
        # A fixed random subset when not all images are used: the same one in every run.
        order = torch.randperm(len(data.dataset), generator=torch.Generator().manual_seed(0))
        subset = Subset(data.dataset, order[:n].tolist())
        batched = hasattr(data.dataset, "__getitems__")
        loader = DataLoader(subset, batch_size=self.batch_size, shuffle=False,
                            collate_fn=keep_batch if batched else None)
        for batch in loader:
            yield images_of(batch)

    @staticmethod
    def cache_key(data: GANDataModule, n: int) -> dict:
        return {"dataset": f"{type(data).__module__}.{type(data).__qualname__}",
                "root": str(data.root.resolve()), "split": data.split,
                "image_size": data.image_size, "channels": data.channels, "num_real": n,
                "subset": "randperm seed 0", "network": NETWORK, "weights": weights_digest(),
                "resize": RESIZE}


def images_of(batch) -> torch.Tensor:
    """The images of a data set's batch, whatever else it carries: ``(images, labels)``, or a
    dict such as a captioned batch's (``image``, ``tokens``, ...)."""
    if isinstance(batch, dict):
        return batch["image"]
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def fids_against(real: torch.Tensor, fakes: dict[str, torch.Tensor], batch_size: int = 100,
                 real_name: str = "Real features", device: torch.device | None = None,
                 cache_key: dict | None = None,
                 cache_dir: str | None = None) -> dict[str, float]:
    """FID of each named set of [-1, 1] images against the ``real`` images, whose features are
    extracted once (and, with a ``cache_key`` naming what they are, cached in ``cache_dir``
    for the next evaluation); the Inception runs on ``device`` (default: where the images
    are)."""
    suite = InceptionMetrics({"fid": FID()}, batch_size=batch_size,
                             **({"cache_dir": cache_dir} if cache_dir else {}))

    def batches(images: torch.Tensor):
        return (to_uint8(part if device is None else part.to(device))
                for part in images.split(batch_size))

    def extract_real() -> torch.Tensor:
        return suite.extract(batches(real), real_name, len(real)).pool

    if cache_key is None:
        real_features = extract_real()
    else:
        key = {**cache_key, "num_real": len(real), "network": NETWORK,
               "weights": weights_digest(), "resize": RESIZE}
        with suite.cache.lock(key):
            real_features = suite.cache.load(key)
            if real_features is None:
                real_features = extract_real()
                suite.cache.save(key, real_features)
    return {name: suite.score(real_features, suite.extract(
                batches(fake), f"Features for {name}", len(fake)))["fid"]
            for name, fake in fakes.items()}
