"""The Classification Accuracy Score: generated images as training data, read against real
ones; and the augmentation mode with exactly n real images per class."""

import pytest
import torch

from conftest import TINY, run_ganrun, unavailable
from ganrun.inference.model import Sampler
from ganrun.metrics.cas import ClassificationAccuracyScore, real_subset


class RealImagesAsGenerator(Sampler):
    """A 'generator' whose image of class k is a real test image of class k: CAS should then
    score about as well as training on real images."""

    def __init__(self, data, noise: bool = False):
        super().__init__({}, {"channels": 1, "image_size": 28}, latent_dim=1, num_classes=10)
        test = data.with_split("test")
        test.setup()
        self.images, self.labels = test.dataset.__getitems__(list(range(len(test.dataset))))
        self.noise, self.drawn = noise, 0

    def generate(self, z, labels, options=None):
        if self.noise:
            return torch.rand(len(labels), *self.images.shape[1:]) * 2 - 1
        picks = []
        for k in labels.tolist():
            members = (self.labels == k).nonzero().flatten()
            picks.append(members[self.drawn % len(members)])
            self.drawn += 1
        return self.images[torch.stack(picks)]


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    from conftest import FASHION
    from ganrun.data import FashionMNIST

    if not FASHION.is_dir():
        unavailable(f"{FASHION} is absent: apt-get install dataset-fashion-mnist")
    data = FashionMNIST(root=str(FASHION), download=False)
    data.setup()
    return data


def test_real_images_score_like_real_data_and_noise_like_chance(fashion):
    metric = ClassificationAccuracyScore(num_samples=1000, steps=100, test_samples=2000,
                                         batch_size=64)  # 0.81 and 0.81 here, 0.84 at 128
    real = metric.evaluate_model(RealImagesAsGenerator(fashion), fashion)
    assert real["cas_real"] > 0.6
    assert abs(real["cas"] - real["cas_real"]) < 0.1
    # Noise teaches nothing however long the classifier trains: a short run says as much.
    noise = ClassificationAccuracyScore(num_samples=500, steps=30, test_samples=2000).evaluate_model(
        RealImagesAsGenerator(fashion, noise=True), fashion)
    assert noise["cas"] < 0.2


def test_augmentation_uses_exactly_n_real_images_per_class(fashion):
    labels = fashion.dataset.labels
    chosen = real_subset(torch.as_tensor(labels), 10, 10, seed=0)
    counts = torch.bincount(torch.as_tensor(labels)[chosen], minlength=10)
    assert counts.tolist() == [10] * 10 and len(set(chosen.tolist())) == 100
    assert torch.equal(chosen, real_subset(torch.as_tensor(labels), 10, 10, seed=0))
    metric = ClassificationAccuracyScore(num_samples=200, real_per_class=[10],
                                         synthetic_per_class=20, steps=30, test_samples=1000)
    values = metric.evaluate_model(RealImagesAsGenerator(fashion), fashion)
    assert {"cas", "cas_real", "aug10_real", "aug10_mixed"} <= set(values)


def test_test_samples_scores_every_classifier_on_one_seeded_subset(fashion):
    from ganrun.errors import UserError

    test = ClassificationAccuracyScore.split(fashion, "test")
    chosen = ClassificationAccuracyScore(test_samples=500).test_images(test)
    again = ClassificationAccuracyScore(test_samples=500).test_images(test)
    assert len(chosen[1]) == 500 and torch.equal(chosen[1], again[1])
    assert torch.equal(chosen[0], again[0]) and len(set(chosen[1].tolist())) == 10
    assert len(ClassificationAccuracyScore().test_images(test)[1]) == 10000  # all by default
    with pytest.raises(UserError, match="test_samples is 0"):
        ClassificationAccuracyScore(test_samples=0)


def test_cas_needs_a_conditional_generator(tmp_path, mnist_root):
    run = tmp_path / "run"
    run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
               f"hydra.run.dir={run}", cwd=tmp_path)
    proc = run_ganrun("eval", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "metrics=cas",
                      "num_samples=20", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "class-conditional generator" in proc.stderr
