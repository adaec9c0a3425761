"""Metric formulas on hand-made features, the [-1, 1] -> uint8 mapping, the real-feature cache."""

import numpy as np
import pytest
import scipy.linalg
import torch

from ganrun.errors import UserError
from ganrun.metrics.inception import Features, InceptionFeatures, to_uint8
from ganrun.metrics.precision_recall import PrecisionRecall, precision_recall
from ganrun.metrics.scores import FID, KID
from ganrun.metrics.suite import InceptionMetrics


def gaussian(n, dim, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g) * (1 + shift) + shift


def test_fid_of_a_set_against_itself_is_zero():
    x = gaussian(300, 32)
    assert abs(FID()(x, Features(x))["fid"]) < 1e-6


def test_fid_equals_the_formula_computed_with_scipy():
    real, fake = gaussian(200, 16, seed=1), gaussian(150, 16, shift=0.5, seed=2)
    r, f = real.double().numpy(), fake.double().numpy()
    mu_r, mu_f = r.mean(0), f.mean(0)
    cov_r, cov_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    root = scipy.linalg.sqrtm(cov_r @ cov_f).real
    expected = ((mu_r - mu_f) ** 2).sum() + np.trace(cov_r + cov_f - 2 * root)
    assert FID()(real, Features(fake))["fid"] == pytest.approx(expected, rel=1e-6)


def test_fid_of_fewer_samples_than_dimensions_equals_the_formula_and_torchmetrics():
    """The n x n form (64 samples of 256 features: rank 63 covariances): scipy's formula on
    the full matrices, torchmetrics' FID, from features or from a statistics file's mu, sigma."""
    from torchmetrics.image.fid import _compute_fid

    from ganrun.metrics.stats import Statistics

    real, fake = gaussian(100, 256, seed=3), gaussian(64, 256, shift=0.3, seed=4).abs()
    r, f = real.double().numpy(), fake.double().numpy()
    cov_r, cov_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    root = scipy.linalg.sqrtm(cov_r @ cov_f).real
    expected = ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(cov_r + cov_f - 2 * root)
    fid = FID()(real, Features(fake))["fid"]
    assert fid == pytest.approx(expected, rel=1e-6)
    stats = Statistics.of(real)
    assert FID()(stats, Features(fake))["fid"] == pytest.approx(fid, rel=1e-9)
    generated = Statistics.of(fake)
    theirs = _compute_fid(stats.mu, stats.sigma, generated.mu, generated.sigma)
    assert fid == pytest.approx(float(theirs), rel=1e-6)
    assert abs(FID()(fake, Features(fake))["fid"]) < 1e-6


def test_kid_equals_the_unbiased_mmd_of_a_cubic_kernel():
    # One subset as large as both sets: the random subset is a permutation, which MMD ignores.
    n, dim = 40, 8
    real, fake = gaussian(n, dim, seed=3), gaussian(n, dim, shift=0.3, seed=4)
    r, f = real.double().numpy(), fake.double().numpy()

    def kernel(a, b):
        return (a @ b.T / dim + 1) ** 3

    k_rr, k_ff, k_rf = kernel(r, r), kernel(f, f), kernel(r, f)
    expected = ((k_rr.sum() - np.trace(k_rr)) / (n * (n - 1))
                + (k_ff.sum() - np.trace(k_ff)) / (n * (n - 1)) - 2 * k_rf.mean())
    assert KID(subsets=1, subset_size=n)(real, Features(fake))["kid"] == pytest.approx(expected, rel=1e-6)


def test_inception_score_equals_the_formula_on_logits():
    from ganrun.metrics.scores import InceptionScore

    logits = gaussian(64, 10, seed=7) * 3
    p = torch.softmax(logits.double(), dim=1).numpy()
    marginal = p.mean(axis=0)
    expected = np.exp((p * (np.log(p) - np.log(marginal))).sum(axis=1).mean())
    fake = Features(torch.zeros(64, 4), logits)
    assert InceptionScore(splits=1)(None, fake)["is"] == pytest.approx(expected, rel=1e-6)


def brute_force_precision_recall(real, fake, k):
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the sample itself

    def inside(manifold, r, queries):
        d = np.linalg.norm(queries[:, None] - manifold[None], axis=-1)
        return (d <= r[None]).any(axis=1).mean()

    return inside(real, radii(real), fake), inside(fake, radii(fake), real)


def test_precision_recall_match_a_brute_force_implementation():
    real, fake = gaussian(60, 5, seed=5), gaussian(50, 5, shift=0.8, seed=6)
    expected = brute_force_precision_recall(real.double().numpy(), fake.double().numpy(), 3)
    assert precision_recall(real, fake, k=3) == pytest.approx(expected)


def test_precision_recall_on_hand_made_sets():
    real = gaussian(50, 4)
    assert PrecisionRecall(k=3)(real, Features(real.clone())) == {"precision": 1.0, "recall": 1.0}
    # Half the generated points on the data, half far away: quality 1/2; only half the data
    # is covered when the generator drops the other half of it.
    far = torch.cat([real[:25], real[:25] + 100])
    values = PrecisionRecall(k=3)(real, Features(far))
    assert values["precision"] == 0.5 and values["recall"] < 1.0


def test_to_uint8_clamps_rounds_and_repeats_gray():
    images = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.2, 254 / 127.5 - 1]).view(1, 1, 1, 6)
    out = to_uint8(images)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 6)
    assert out[0, 0, 0].tolist() == [0, 0, 128, 255, 255, 254]
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(pixels.float() / 127.5 - 1)[:, :1], pixels)  # exact round trip


class StubNetwork(torch.nn.Module):
    """Counts its inputs; features are the images' mean colour per channel."""

    def __init__(self):
        super().__init__()
        self.images = 0

    def forward(self, images):
        self.images += len(images)
        return Features(images.float().mean(dim=(2, 3)))


@pytest.fixture
def stub_suite(tmp_path, monkeypatch):
    monkeypatch.setattr("ganrun.metrics.suite.weights_digest", lambda: "stub")
    suite = InceptionMetrics({"fid": FID()}, num_samples=8, real_samples=None, batch_size=5,
                             cache_dir=str(tmp_path / "cache"))
    suite._network = StubNetwork()
    return suite


@pytest.fixture
def data(mnist_root):
    from ganrun.data import MNIST

    return MNIST(root=str(mnist_root), download=False, batch_size=4)


def generate(n):
    return torch.rand(n, 1, 28, 28) * 2 - 1


def test_real_features_are_cached_miss_then_hit(stub_suite, data, caplog):
    caplog.set_level("INFO", logger="ganrun")
    first = stub_suite.evaluate(generate, data)
    assert stub_suite.real_passes == 1 and "not cached yet" in caplog.text
    assert stub_suite._network.images == 8 + 16  # generated + the whole 16-image test split
    second = InceptionMetrics({"fid": FID()}, num_samples=8, batch_size=5,
                              cache_dir=stub_suite.cache.folder.parent)
    second._network = StubNetwork()
    second.evaluate(generate, data)
    assert second.real_passes == 0 and second._network.images == 8 and "cache hit" in caplog.text
    assert np.isfinite(first["fid"])


def test_cache_key_covers_what_changes_the_features(stub_suite, data):
    test = data.with_split("test")
    key = stub_suite.cache_key(test, 16)
    others = [stub_suite.cache_key(data.with_split("train"), 16), stub_suite.cache_key(test, 8),
              {**key, "weights": "other"}, {**key, "image_size": 32}, {**key, "resize": "x"}]
    paths = {stub_suite.cache.path(k) for k in [key, *others]}
    assert len(paths) == 1 + len(others)


@pytest.mark.parametrize("damage", ["stale", "corrupt", "truncated"])
def test_stale_or_corrupt_cache_file_is_rebuilt(stub_suite, data, damage, caplog):
    stub_suite.evaluate(generate, data)
    real = data.with_split("test")
    real.setup()
    key = stub_suite.cache_key(real, 16)
    path = stub_suite.cache.path(key)
    good = stub_suite.cache.load(key)
    entry = torch.load(path, weights_only=True)
    if damage == "stale":
        entry["key"]["num_real"] = 3  # a file written for another key under this name
        torch.save(entry, path)
    elif damage == "corrupt":
        entry["features"][0, 0] += 1  # the checksum no longer matches
        torch.save(entry, path)
    else:
        path.write_bytes(path.read_bytes()[:100])
    assert stub_suite.cache.load(key) is None
    stub_suite.evaluate(generate, data)
    assert stub_suite.real_passes == 2
    assert torch.equal(stub_suite.cache.load(key), good)
    assert {"stale": "stale", "corrupt": "corrupt", "truncated": "unreadable"}[damage] in caplog.text


def test_impossible_sample_counts_are_user_errors(stub_suite, data):
    stub_suite.num_samples = 1
    with pytest.raises(UserError, match="at least 2"):
        stub_suite.evaluate(generate, data)
    kid = InceptionMetrics({"kid": KID(subset_size=50)}, num_samples=100,
                           cache_dir=str(stub_suite.cache.folder))
    kid._network = StubNetwork()  # the count check, not the weights (absent offline), is asked
    with pytest.raises(UserError, match="subset_size"):
        kid.check(data)  # 16 real images < subset_size


def test_missing_weights_offline_is_a_user_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
                        offline)
    with pytest.raises(UserError, match="ganrun fid-weights --from"):
        InceptionFeatures()


def test_the_inception_is_built_once_per_process_for_its_weights_head_and_device(monkeypatch):
    """Every evaluation of a process shares one network per weights digest, head and device;
    weights replaced on disk, or missing, build anew (missing ones fail there)."""
    import ganrun.metrics.inception as inception

    built, digest = [], {"value": "a"}

    class Counted(torch.nn.Module):
        def __init__(self, logits=False):
            super().__init__()
            built.append(logits)

    def current_digest():
        if digest["value"] is None:
            raise FileNotFoundError("no weights")
        return digest["value"]

    monkeypatch.setattr(inception, "InceptionFeatures", Counted)
    monkeypatch.setattr(inception, "weights_digest", current_digest)
    monkeypatch.setattr(inception, "_built", {})
    first = InceptionMetrics(scores=[FID()]).network("cpu")
    assert InceptionMetrics(scores=[FID()]).network("cpu") is first and built == [False]
    assert inception.shared_features(True, "cpu") is not first and built == [False, True]
    digest["value"] = "b"  # the weights file replaced
    assert inception.shared_features(False, "cpu") is not first and len(built) == 3
    digest["value"] = None
    inception.shared_features(False, "cpu")
    inception.shared_features(False, "cpu")
    assert len(built) == 5


def test_inception_score_refuses_converted_weights(with_torch_home):
    with pytest.raises(UserError, match="classifier"):
        InceptionFeatures(logits=True)
    assert InceptionFeatures(logits=False).logits is False


@pytest.mark.parametrize("option", ["none", "fid", "fid_kid_pr", "all"])
def test_every_metrics_option_composes_validates_and_builds(option, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from ganrun.config import config_dir, validate

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"metrics={option}"], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path)
            HydraConfig.instance().set_config(cfg)
            del cfg["hydra"]
        cfg = validate(cfg)
        callback = instantiate(cfg.callbacks.metrics)  # the Inception loads on first use only
        eval_cfg = compose("eval", overrides=[f"metrics={option}", "num_samples=7"])
    expected = {"none": [], "fid": ["fid"], "fid_kid_pr": ["fid", "kid", "precision", "recall"],
                "all": ["fid", "kid", "precision", "recall", "is"]}[option]
    assert callback.hparam_metrics == [f"metrics/{key}" for key in expected]
    if option != "none":
        (suite,) = instantiate(eval_cfg.metrics.evaluate).values()
        assert suite.num_samples == 7 and suite.split == "test"


def test_fid_warning_below_2000_samples():
    from ganrun.metrics.sample_counts import few_samples_warning

    line = few_samples_warning({"num_samples": 200, "real_samples": 10000})
    assert "FID from 200 generated and 10000 real images is strongly biased" in line
    assert "\n" not in line
    assert few_samples_warning({"num_samples": 2000, "real_samples": 10000}) is None


def test_fast_inference_pass_matches_the_plain_network(with_torch_home, fashion_root):
    # The folded, channels-last network (the default) against torchmetrics' own, on the same
    # few real images: the FID acceptance bound is 1e-4 per feature.
    from ganrun.data import FashionMNIST

    data = FashionMNIST(root=str(fashion_root), download=False, split="test")
    data.setup()
    images = to_uint8(data.dataset.__getitems__([0, 1, 2, 3])[0])
    fast, plain = InceptionFeatures(), InceptionFeatures(fast=False)
    assert not any(type(m).__name__ == "BasicConv2d" for m in fast.net.modules())
    difference = (fast(images).pool - plain(images).pool).abs().max().item()
    assert difference < 1e-4
