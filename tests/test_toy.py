"""Toy 2-D data sets (ring, grid) and the mode metrics on point sets with known coverage."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_ganrun
from ganrun.data.toy import Grid, Ring
from ganrun.errors import UserError
from ganrun.metrics.modes import ModeCoverage, mode_statistics


def test_ring_and_grid_serve_2d_points_as_1x1_images():
    ring, grid = Ring(num_points=1000, batch_size=16), Grid(num_points=1000, batch_size=16)
    assert (ring.channels, ring.image_size, ring.num_classes) == (2, 1, 0)
    points, modes = next(iter(ring.train_dataloader()))
    assert points.shape == (16, 2, 1, 1) and modes.shape == (16,)
    assert len(ring.centers) == 8 and len(grid.centers) == 25
    # Benchmark geometry, times the documented scale: radius 2 -> 0.8, grid ±4 -> ±0.8.
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 0.8))
    assert grid.centers.abs().max() == pytest.approx(0.8) and grid.std == pytest.approx(0.01)
    assert ring.real_points(1000).abs().max() < 1  # inside the generator's tanh range
    # Each point lies near the centre of the mode it is labelled with.
    ring.setup()
    offsets = ring.dataset.points - ring.centers[ring.dataset.modes]
    assert offsets.norm(dim=1).max() < 6 * ring.std


def test_points_are_reproducible_and_splits_differ():
    a, b = Ring(num_points=100, batch_size=16), Ring(num_points=100, batch_size=16)
    assert torch.equal(a.real_points(100), b.real_points(100))
    assert not torch.equal(a.real_points(100), a.with_split("test").real_points(100))
    assert not torch.equal(a.real_points(100), Ring(num_points=100, batch_size=16, seed=1).real_points(100))


def test_scale_beyond_tanh_range_is_refused():
    with pytest.raises(UserError, match="tanh range"):
        Ring(scale=0.5)


def cluster(center, n, spread=0.0):
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(n))
    return torch.as_tensor(center, dtype=torch.float32) + spread * noise


def test_exactly_three_of_eight_ring_modes():
    ring = Ring(num_points=10)
    points = torch.cat([cluster(ring.centers[k], 30, 0.5 * ring.std) for k in (0, 3, 5)])
    stats = mode_statistics(points, ring.centers, ring.std)
    assert stats == {"modes": 3.0, "hq": 1.0}


def test_half_the_points_off_mode_give_hq_one_half():
    ring = Ring(num_points=10)
    on_mode = torch.cat([cluster(c, 25) for c in ring.centers])  # 200 points, all 8 modes
    off_mode = cluster([0.0, 0.0], 200)  # the ring's centre: far from every mode
    stats = mode_statistics(torch.cat([on_mode, off_mode]), ring.centers, ring.std)
    assert stats == {"modes": 8.0, "hq": 0.5}


def test_a_mode_needs_min_count_high_quality_samples():
    grid = Grid(num_points=10)
    points = torch.cat([cluster(grid.centers[0], 20), cluster(grid.centers[1], 19),
                        cluster(grid.centers[2] + 4 * grid.std, 50)])  # 4 std away: not hq
    stats = mode_statistics(points, grid.centers, grid.std, min_count=20)
    assert stats["modes"] == 1.0 and stats["hq"] == pytest.approx(39 / 89)


def test_real_data_as_generator_covers_every_grid_mode():
    grid = Grid(num_points=5000)
    metric = ModeCoverage(num_samples=2500, num_real=500)
    results = metric.evaluate(lambda n: grid.real_points(n).view(n, 2, 1, 1), grid)
    assert results["modes"] == 25.0
    # Within 3 std in 2-D: 1 - exp(-9/2) = 98.9% of a Gaussian's samples.
    assert results["hq"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    scatter = results["scatter"]
    assert scatter.shape == (3, 320, 320) and scatter.dtype == torch.float32
    assert 0 <= scatter.min() and scatter.max() <= 1 and scatter.std() > 0


def test_mode_metrics_refuse_image_data(mnist_root):
    from ganrun.data import MNIST

    with pytest.raises(UserError, match="dataset=ring or dataset=grid"):
        ModeCoverage().evaluate(lambda n: torch.zeros(n, 1, 28, 28), MNIST(root=mnist_root))


def test_train_on_ring_end_to_end_then_sample_points_and_measure_modes(tmp_path):
    run = tmp_path / "run"
    run_ganrun("train", "model=mlp", "dataset=ring", "model.latent_dim=4", "hardware=cpu",
               "model.generator.hidden=[32,32]", "model.discriminator.hidden=[32,32]",
               "dataset.num_points=2000", "dataset.batch_size=64", "trainer.max_steps=30",
               "callbacks.samples.every_n_iterations=10", f"hydra.run.dir={run}", cwd=tmp_path)
    # The samples callback draws a scatter plot (RGB) instead of a grid of 1x1 images.
    picture = Image.open(run / "samples" / "step_0000030.png")
    assert picture.mode == "RGB" and picture.size == (320, 320)

    run_ganrun("sample", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "num=300",
               "format=npz", "out=fake", cwd=tmp_path)
    with np.load(tmp_path / "fake" / "samples.npz") as saved:
        points = torch.from_numpy(saved["points"])
        assert saved["images"].shape == (300, 1, 1, 2) and points.shape == (300, 2)

    ring = Ring()
    stats = mode_statistics(points, ring.centers, ring.std)
    assert 0 <= stats["modes"] <= 8 and 0 <= stats["hq"] <= 1
