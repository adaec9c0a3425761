"""FID statistics files (.npz of mu and sigma): `ganrun fid-stats`, `ganrun eval real=FILE.npz`,
`metrics.real_stats`, and the files that are refused."""

import json

import numpy as np
import pytest
import torch

from conftest import run_ganrun
from ganrun.errors import UserError
from ganrun.metrics.inception import Features
from ganrun.metrics.scores import FID, KID
from ganrun.metrics.stats import load_stats
from ganrun.metrics.suite import InceptionMetrics
from test_eval import write_images


def features(n, seed, dim=2048):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_pytorch_fid_stats_file_gives_the_fid_of_its_features(tmp_path, monkeypatch):
    # pytorch-fid's save_fid_stats: np.mean(act, axis=0), np.cov(act, rowvar=False), savez.
    monkeypatch.setattr("ganrun.metrics.stats.NUM_FEATURES", 64)  # 2048-d eigvals take long
    real, fake = features(50, 0, 64).float(), Features(features(40, 1, 64).float() + 0.1)
    act = real.numpy()
    np.savez_compressed(tmp_path / "stats.npz", mu=np.mean(act, axis=0),
                        sigma=np.cov(act, rowvar=False))
    from_images = FID()(real, fake)["fid"]
    from_file = FID()(load_stats(tmp_path / "stats.npz"), fake)["fid"]
    assert from_file == pytest.approx(from_images, rel=1e-6)


def test_training_metrics_with_real_stats_skip_the_real_pass(tmp_path, mnist_root, monkeypatch):
    from test_metrics import StubNetwork, generate

    from ganrun.data import MNIST

    monkeypatch.setattr("ganrun.metrics.stats.NUM_FEATURES", 3)  # the stub's features: (N, 3)
    feats = np.random.default_rng(0).uniform(0, 255, (30, 3))
    np.savez(tmp_path / "stats.npz", mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    suite = InceptionMetrics({"fid": FID()}, num_samples=8, cache_dir=str(tmp_path),
                             real_stats=str(tmp_path / "stats.npz"))
    suite._network = StubNetwork()
    values = suite.evaluate(generate, MNIST(root=str(mnist_root), download=False))
    assert suite.real_passes == 0 and suite._network.images == 8  # only the generated ones
    assert np.isfinite(values["fid"])
    suite.scores.append(KID(subset_size=2))
    with pytest.raises(UserError, match="KID cannot be computed from the statistics file"):
        suite.check(MNIST(root=str(mnist_root), download=False))


@pytest.fixture
def folders(tmp_path):
    write_images(tmp_path / "real", [((40, 30), "RGB")] * 4 + [((20, 20), "L")] * 2, seed=0)
    write_images(tmp_path / "fake", [((32, 32), "RGB")] * 5, seed=1)
    return tmp_path


def test_fid_stats_of_a_folder_gives_the_fid_of_its_images(folders, with_torch_home):
    proc = run_ganrun("fid-stats", "real", "out=stats/real.npz", cwd=folders)
    assert "Wrote the FID statistics (mu, sigma) of 6 images" in proc.stdout
    with np.load(folders / "stats" / "real.npz") as stats:  # pytorch-fid's layout
        assert stats["mu"].shape == (2048,) and stats["sigma"].shape == (2048, 2048)
        assert stats["mu"].dtype == np.float64
    values = {}
    for real in ("real", "stats/real.npz"):
        proc = run_ganrun("eval", f"real={real}", "fake=fake", cwd=folders)
        values[real] = json.loads(proc.stdout.strip().splitlines()[-1])["fid"]
    assert values["stats/real.npz"] == pytest.approx(values["real"], rel=1e-6)


def test_fid_stats_of_a_data_set_reuses_the_real_feature_cache(tmp_path, mnist_root,
                                                                with_torch_home):
    args = ["fid-stats", "mnist", f"root={mnist_root}", "real_samples=6", "out=a.npz",
            f"cache_dir={tmp_path / 'cache'}"]
    first = run_ganrun(*args, cwd=tmp_path)
    assert "not cached yet" in first.stderr and "6 images of mnist's test split" in first.stdout
    second = run_ganrun(*args[:-2], "out=b.npz", args[-1], cwd=tmp_path)
    assert "cache hit" in second.stderr
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert np.array_equal(a["sigma"], b["sigma"])


@pytest.mark.parametrize("arrays, message", [
    ({"mu": np.zeros(64), "sigma": np.eye(64)}, "shape"),
    ({"mu": np.full(2048, np.nan), "sigma": np.eye(2048)}, "NaN"),
    ({"mu": np.zeros(2048)}, "need `mu` and `sigma`"),
])
def test_bad_statistics_files_are_refused(tmp_path, arrays, message):
    write_images(tmp_path / "fake", [((8, 8), "L")] * 2)
    np.savez(tmp_path / "bad.npz", **arrays)
    proc = run_ganrun("eval", "real=bad.npz", "fake=fake", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert "ganrun fid-stats" in proc.stderr  # the fix


def test_kid_from_a_statistics_file_is_refused_clearly(tmp_path):
    write_images(tmp_path / "fake", [((8, 8), "L")] * 2)
    np.savez(tmp_path / "s.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    proc = run_ganrun("eval", "real=s.npz", "fake=fake", "metrics=fid_kid_pr", cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "KID, PrecisionRecall cannot be computed from the statistics file" in proc.stderr
    assert "metrics=fid" in proc.stderr


def test_fid_stats_user_errors(tmp_path):
    proc = run_ganrun("fid-stats", "nowhere", "out=x.npz", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "neither a folder nor a data set" in proc.stderr
    proc = run_ganrun("fid-stats", "mnist", "out=x.txt", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "must end in .npz" in proc.stderr
