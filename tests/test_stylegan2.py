"""StyleGAN2 through the commands: `ganrun train task=stylegan2` with NVIDIA's four phases and
the lazy-regularization optimizer correction, exact resume after SIGKILL (pl_mean, w_avg,
counters), `ganrun sample` with truncation, style mixing and W interpolation, conditional
sampling, export, bf16 and DDP."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import image_steps, run_ganrun, scalars
from fakedata import write_mnist

TINY_SG2 = ["experiment=stylegan2_fashion_mnist", "dataset=mnist", "dataset.download=false",
            "debug=tiny", "dataset.image_size=16", "dataset.batch_size=4", "seed=1"]
TAGS = {"loss/g", "loss/d", "reg/pl_penalty", "reg/pl_mean", "reg/r1_penalty", "lr/g", "lr/d",
        "grad_norm/g", "grad_norm/d", "d/real", "d/fake"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sg2data")
    write_mnist(root, n_train=64, n_test=16)
    return root


def train(data, run, *extra, cwd, check=True, env=None):
    return run_ganrun("train", *TINY_SG2, f"dataset.root={data}", f"hydra.run.dir={run}",
                      *extra, cwd=cwd, check=check, env=env)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("stylegan2") / "run"
    train(data, run, "trainer.max_steps=4", cwd=run.parent)
    return run


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def test_trains_with_nvidias_phases_and_optimizer_correction(trained):
    logged = scalars(trained)
    assert TAGS <= set(logged)
    assert [step for step, _ in logged["loss/g"]] == [1, 2, 3, 4]
    assert image_steps(trained) == [1, 4]
    state = checkpoint(trained)
    # G_reg every 2 batches (1, 3), D_reg every 3 (1, 4)
    assert state["ganrun"]["counters"] == {"batches": 4, "G": 4, "G_reg": 2, "D": 4, "D_reg": 2}
    (d,), (g,) = (s["param_groups"] for s in state["optimizer_states"])  # players D, G
    assert g["lr"] == pytest.approx(0.0025 * 2 / 3) and d["lr"] == pytest.approx(0.0025 * 3 / 4)
    assert g["betas"] == pytest.approx([0.0, 0.99 ** (2 / 3)])
    assert d["betas"] == pytest.approx([0.0, 0.99 ** (3 / 4)])
    weights = state["state_dict"]
    assert weights["task.pl_mean"] > 0
    # the EMA copy takes G's buffers (w_avg) as they are
    assert torch.equal(weights["task.ema.generator.mapping.w_avg"],
                       weights["task.nets.G.mapping.w_avg"])
    assert weights["task.nets.G.mapping.w_avg"].abs().sum() > 0


def read_png(path: Path) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.array(Image.open(path)))


def test_sample_truncation_zero_gives_the_image_of_w_avg(trained, tmp_path):
    ckpt = trained / "checkpoints" / "last.ckpt"
    run_ganrun("sample", f"ckpt={ckpt}", "num=3", f"out={tmp_path / 'zero'}", "truncation=0",
               cwd=tmp_path)
    images = [read_png(tmp_path / "zero" / f"sample_{i:06d}.png") for i in range(3)]
    assert torch.equal(images[0], images[1]) and torch.equal(images[0], images[2])
    run_ganrun("sample", f"ckpt={ckpt}", "num=3", f"out={tmp_path / 'full'}", cwd=tmp_path)
    full = [read_png(tmp_path / "full" / f"sample_{i:06d}.png") for i in range(3)]
    assert not torch.equal(full[0], full[1])
    # the constant noise makes a sample independent of its batch
    run_ganrun("sample", f"ckpt={ckpt}", "num=3", f"out={tmp_path / 'one'}", "batch_size=1",
               cwd=tmp_path)
    assert all(torch.equal(read_png(tmp_path / "one" / f"sample_{i:06d}.png"), full[i])
               for i in range(3))


def test_sample_mixing_grid_and_w_interpolation(trained, tmp_path):
    from ganrun.inference.latents import seeded_latents
    from ganrun.inference.loading import load_model
    from ganrun.tasks.stylegan2 import mixing_ws

    ckpt = trained / "checkpoints" / "last.ckpt"
    run_ganrun("sample", f"ckpt={ckpt}", "num=2", "nrow=3", "mix=true", "mix_layers=2-5",
               f"out={tmp_path}", cwd=tmp_path)
    grid = read_png(tmp_path / "mixing.png")
    assert grid.shape[:2] == (2 + 3 * 18, 2 + 4 * 18)  # 3 rows x 4 columns of 16 px + borders
    sampler = load_model(ckpt)
    rows = sampler.ws(seeded_latents(2, 8, 0), None, None)
    cols = sampler.ws(seeded_latents(3, 8, 1), None, None)
    mixed = mixing_ws(rows, cols, [2, 3, 4, 5])
    assert torch.equal(mixed[4, :2], rows[1, :2]) and torch.equal(mixed[4, 2:6], cols[1, 2:6])
    assert torch.equal(mixed[4, 6:], rows[1, 6:])
    # the cell of row 1, column 1 (grid cell (2, 2)) is that mix, as synthesized
    expected = ((sampler.synthesize(mixed[4:5])[0].clamp(-1, 1) + 1) * 127.5).round() \
        .to(torch.uint8)
    cell = grid[2 + 2 * 18:2 + 2 * 18 + 16, 2 + 2 * 18:2 + 2 * 18 + 16]
    assert (cell.int() - expected[0].int()).abs().max() <= 1
    run_ganrun("sample", f"ckpt={ckpt}", "num=2", "interpolate=true", "steps=4",
               "truncation=0.5", "truncation_cutoff=3", f"out={tmp_path / 'walk'}", cwd=tmp_path)
    assert read_png(tmp_path / "walk" / "interpolation.png").shape[:2] == (2 + 2 * 18, 2 + 4 * 18)


@pytest.mark.parametrize("args, message", [
    (["mix=true", "mix_layers=7-99"], "style layers"),
    (["truncation_cutoff=2"], "needs a truncation"),
    (["noise_mode=loud"], "noise_mode must be one of"),
    (["mix=true", "interpolate=true"], "Pick one"),
])
def test_sample_refuses_bad_style_options(trained, tmp_path, args, message):
    proc = run_ganrun("sample", f"ckpt={trained / 'checkpoints' / 'last.ckpt'}", *args,
                      f"out={tmp_path}", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and message in proc.stderr


def test_export_generates_like_the_checkpoint(trained, tmp_path):
    from ganrun import generate_images, load_generator

    ckpt = trained / "checkpoints" / "last.ckpt"
    run_ganrun("export", f"ckpt={ckpt}", f"out={tmp_path / 'export'}", cwd=tmp_path)
    exported = generate_images(load_generator(tmp_path / "export"), 4, seed=2, truncation=0.7)
    assert torch.equal(exported, generate_images(load_generator(ckpt), 4, seed=2,
                                                 truncation=0.7))
    assert not torch.equal(exported, generate_images(load_generator(ckpt), 4, seed=2))


def test_conditional_stylegan2_samples_the_chosen_class(data, tmp_path):
    from ganrun import generate_images, load_generator

    run = tmp_path / "run"
    train(data, run, "conditioning=projection", "trainer.max_steps=2", cwd=tmp_path)
    ckpt = run / "checkpoints" / "last.ckpt"
    run_ganrun("sample", f"ckpt={ckpt}", "num=2", "label=3", f"out={tmp_path / 'three'}",
               cwd=tmp_path)
    G = load_generator(ckpt)
    assert G.ganrun["num_classes"] == 10
    three = generate_images(G, 2, seed=0, labels=3)
    assert not torch.equal(three, generate_images(G, 2, seed=0, labels=4))
    written = read_png(tmp_path / "three" / "sample_000000.png")
    expected = ((three[0, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert (written.int() - expected.int()).abs().max() <= 1
    assert "3" in (tmp_path / "three" / "labels.csv").read_text().splitlines()[1]


def test_bad_combinations_get_one_paragraph(data, tmp_path):
    proc = train(data, tmp_path / "a", "conditioning=acgan", "trainer.max_steps=1",
                 cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "conditioning=projection" in proc.stderr
    proc = train(data, tmp_path / "b", "dataset.image_size=28", "trainer.max_steps=1",
                 cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "dataset.image_size=32" in proc.stderr

