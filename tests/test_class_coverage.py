"""The class-coverage metric with a classifier that can learn the classes of a tiny data set."""

import numpy as np
import pytest
import torch

from fakedata import write_idx
from ganrun.data import MNIST
from ganrun.data.idx import IMAGES_MAGIC, LABELS_MAGIC
from ganrun.errors import UserError
from ganrun.metrics import classifier
from ganrun.metrics.class_coverage import ClassCoverage, kl_divergence

LEVELS = np.arange(10) * 25 + 10  # class k: flat images of brightness 10 + 25 k


@pytest.fixture
def bright_mnist(tmp_path) -> MNIST:
    """An MNIST-format set whose 10 classes differ by brightness: easy to learn in seconds."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = LEVELS[labels][:, None, None] + rng.integers(-5, 6, (n, 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images, IMAGES_MAGIC)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels, LABELS_MAGIC)
    return MNIST(root=tmp_path / "data", download=False, batch_size=32)


def fake_generator(classes):
    """generate(n): noisy images of the given classes, in turn, in [-1, 1]."""
    drawn = []

    def generate(n):
        labels = torch.tensor(classes)[torch.arange(len(drawn), len(drawn) + n) % len(classes)]
        drawn.extend(labels.tolist())
        pixels = torch.as_tensor(LEVELS)[labels].view(n, 1, 1, 1) + torch.randint(-5, 6, (n, 1, 28, 28))
        return pixels.float() / 127.5 - 1
    return generate


def metric(tmp_path, **kwargs):
    return ClassCoverage(num_samples=200, batch_size=64, train_steps=150, train_batch_size=32,
                         cache_dir=str(tmp_path / "cache"), **kwargs)


def test_one_class_generator_vs_balanced_generator(bright_mnist, tmp_path):
    collapsed = metric(tmp_path).evaluate(fake_generator([3]), bright_mnist)
    assert collapsed["classes_covered"] == 1.0
    assert collapsed["class_kl"] == pytest.approx(np.log(10), abs=0.05)
    balanced = metric(tmp_path).evaluate(fake_generator(list(range(10))), bright_mnist)
    assert balanced["classes_covered"] == 10.0
    assert balanced["class_kl"] < 0.01


def test_classifier_is_trained_once_then_read_from_the_cache(bright_mnist, tmp_path, monkeypatch):
    metric(tmp_path).evaluate(fake_generator([0, 1]), bright_mnist)
    (cached,) = (tmp_path / "cache" / "classifiers").glob("*.pt")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been used")
    monkeypatch.setattr(classifier, "train", no_training)
    result = metric(tmp_path).evaluate(fake_generator([0, 1]), bright_mnist)
    assert result["classes_covered"] == 2.0
    # Another recipe is another cache entry, so it trains.
    with pytest.raises(AssertionError, match="cached classifier"):
        metric(tmp_path, seed=1).evaluate(fake_generator([0]), bright_mnist)


def test_corrupt_cache_is_rebuilt(bright_mnist, tmp_path):
    metric(tmp_path).evaluate(fake_generator([0]), bright_mnist)
    (cached,) = (tmp_path / "cache" / "classifiers").glob("*.pt")
    cached.write_bytes(b"garbage")
    result = metric(tmp_path).evaluate(fake_generator([5]), bright_mnist)
    assert result["classes_covered"] == 1.0
    assert torch.load(cached, weights_only=True)["key"]["steps"] == 150  # rewritten


def test_kl_is_finite_for_classes_absent_from_real_data():
    real = torch.tensor([0.5, 0.5, 0.0])
    assert np.isfinite(kl_divergence(torch.tensor([0.0, 0.0, 1.0]), real, 1e-6))
    assert kl_divergence(real, real, 1e-6) == pytest.approx(0, abs=1e-9)


def test_unlabelled_data_is_refused():
    from ganrun.data.toy import Ring

    with pytest.raises(UserError, match="labelled data set"):
        ClassCoverage().evaluate(lambda n: torch.zeros(n, 2, 1, 1), Ring(num_points=10))


def test_recipe_flips_some_images_and_keeps_the_rest():
    images = torch.arange(64 * 9.0).reshape(64, 1, 3, 3)
    plain = classifier.augmented(images, classifier.Recipe(), torch.Generator().manual_seed(0))
    assert torch.equal(plain, images)
    flipped = classifier.augmented(images, classifier.Recipe(flip=True),
                                   torch.Generator().manual_seed(0))
    mirrored = (flipped == images.flip(3)).flatten(1).all(1)
    kept = (flipped == images).flatten(1).all(1)
    assert (mirrored ^ kept).all() and 16 < mirrored.sum() < 48
