"""`ganrun sample`: PNG files, .npz, grids and interpolations from a trained checkpoint."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, run_ganrun
from fakedata import write_mnist
from ganrun.commands import sample as sample_command
from ganrun.inference.latents import lerp, seeded_latents, slerp

TINY_MLP = [*TINY, "model=mlp", "model.generator.hidden=[32]", "model.discriminator.hidden=[32]"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A checkpoint of a 3-iteration MLP run on a tiny MNIST (unconditional)."""
    tmp = tmp_path_factory.mktemp("run")
    write_mnist(tmp / "data", n_train=64, n_test=16)
    run_ganrun("train", *TINY_MLP, "dataset=mnist", f"dataset.root={tmp / 'data'}",
               f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    return tmp / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def conditional_ckpt(ckpt):
    """The same run with a 10-class conditional generator (tests/fakenets.py) put in."""
    from omegaconf import OmegaConf

    from ganrun.runner.build import build_module

    checkpoint = torch.load(ckpt, weights_only=True)
    state = checkpoint["ganrun"]
    state["config"]["model"]["generator"]["_target_"] = "fakenets.LabelledGenerator"
    module = build_module(OmegaConf.create(state["config"]), state["data_shape"], state["choices"])
    checkpoint["state_dict"] = module.state_dict()
    path = ckpt.with_name("conditional.ckpt")
    torch.save(checkpoint, path)
    return path


def sample(ckpt, out, *args):
    """``ganrun sample`` in this process (the CLI tests below run it as a subprocess)."""
    sample_command.main([f"ckpt={ckpt}", f"out={out}", *map(str, args)])
    return out


def pixels(path):
    return np.asarray(Image.open(path))


def test_sample_writes_pngs_from_any_folder(ckpt, tmp_path):
    proc = run_ganrun("sample", f"ckpt={ckpt}", "num=5", "out=fake", cwd=tmp_path)
    files = sorted(p.name for p in (tmp_path / "fake").iterdir())
    assert files == [f"sample_00000{i}.png" for i in range(5)]
    image = Image.open(tmp_path / "fake" / files[0])
    assert image.mode == "L" and image.size == (28, 28)
    assert "Wrote 5 file(s)" in proc.stdout
    assert "sample" in run_ganrun("--help", cwd=tmp_path).stdout


def test_same_seed_same_files_whatever_num_and_batch_size(ckpt, tmp_path):
    a = sample(ckpt, tmp_path / "a", "num=5", "batch_size=2")
    b = sample(ckpt, tmp_path / "b", "num=3", "batch_size=5")
    c = sample(ckpt, tmp_path / "c", "num=3", "seed=1")
    for i in range(3):
        name = f"sample_{i:06d}.png"
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert not np.array_equal(pixels(a / name), pixels(c / name))


def test_npz_holds_the_png_images(ckpt, tmp_path):
    pngs = sample(ckpt, tmp_path / "png", "num=4")
    npz = sample(ckpt, tmp_path / "npz", "num=4", "format=npz")
    with np.load(npz / "samples.npz") as saved:
        assert sorted(saved) == ["images"]  # unconditional: no labels
        images = saved["images"]
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8
    for i in range(4):
        assert np.array_equal(images[i, :, :, 0], pixels(pngs / f"sample_{i:06d}.png"))


def test_grid_and_interpolation_images(ckpt, tmp_path):
    out = sample(ckpt, tmp_path / "out", "num=6", "format=grid", "nrow=3")
    assert Image.open(out / "grid.png").size == (3 * 30 + 2, 2 * 30 + 2)
    sample(ckpt, out, "num=2", "interpolate=true", "steps=5")
    assert Image.open(out / "interpolation.png").size == (5 * 30 + 2, 2 * 30 + 2)


def test_slerp_keeps_the_norm_and_ends_at_the_endpoints():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.linspace(0, 1, 5).view(5, 1)
    path = slerp(a, b, t)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.ones(5))
    assert lerp(a, b, t)[2].norm() < 0.8  # the straight path cuts through the middle
    assert torch.allclose(slerp(a, a, t), a.expand(5, 2))  # parallel: no division by zero


def test_latents_do_not_depend_on_num():
    assert torch.equal(seeded_latents(3000, 4, seed=7)[:5], seeded_latents(5, 4, seed=7))


@pytest.fixture
def trust_fakenets(monkeypatch):
    """The conditional checkpoint names tests/fakenets.py: a user's own network, which ganrun
    builds from a checkpoint only when the user trusts its module."""
    monkeypatch.setenv("GANRUN_TRUST_TARGETS", "fakenets")


def test_conditional_model_fixed_label_and_balanced_mix(conditional_ckpt, tmp_path,
                                                        trust_fakenets):
    out = sample(conditional_ckpt, tmp_path / "three", "num=4", "label=3")
    rows = list(csv.DictReader(open(out / "labels.csv")))
    assert [row["label"] for row in rows] == ["3"] * 4
    assert all(abs(pixels(out / row["file"]).mean() - 76.5) < 3 for row in rows)

    out = sample(conditional_ckpt, tmp_path / "mix", "num=20")
    rows = list(csv.DictReader(open(out / "labels.csv")))
    assert [int(row["label"]) for row in rows] == [i % 10 for i in range(20)]
    for row in rows:  # each image shows the class its label says
        assert abs(pixels(out / row["file"]).mean() - 25.5 * int(row["label"])) < 3

    out = sample(conditional_ckpt, tmp_path / "npz", "num=20", "format=npz")
    with np.load(out / "samples.npz") as saved:
        assert saved["labels"].tolist() == [i % 10 for i in range(20)]


def test_existing_files_are_kept_unless_overwrite(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    sample(ckpt, out, "num=2")
    before = (out / "sample_000000.png").read_bytes()
    with pytest.raises(SystemExit) as exit:
        sample(ckpt, out, "num=2", "seed=5")
    assert exit.value.code == 2 and "overwrite=true" in capsys.readouterr().err
    assert (out / "sample_000000.png").read_bytes() == before
    sample(ckpt, out, "num=2", "seed=5", "overwrite=true")
    assert (out / "sample_000000.png").read_bytes() != before
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize("args, message", [
    (["num=0"], "num must be at least 1"),
    (["nmu=3"], "Did you mean `num`"),
    (["num=many"], "invalid value for `num`"),
    (["format=jpeg"], "unknown format 'jpeg'"),
    (["label=3"], "unconditional"),
    (["device=tpu"], "unknown device 'tpu'"),
    (["interpolate=true", "format=npz"], "interpolate=true writes one PNG grid"),
])
def test_impossible_requests(ckpt, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit:
        sample(ckpt, tmp_path / "out", *args)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_label_out_of_range(conditional_ckpt, tmp_path, capsys, trust_fakenets):
    with pytest.raises(SystemExit):
        sample(conditional_ckpt, tmp_path / "out", "label=10")
    assert "label must be 0 to 9" in capsys.readouterr().err


def test_unwritable_output_folder(ckpt, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        sample(ckpt, tmp_path / "file" / "out")
    assert "Cannot write to the output folder" in capsys.readouterr().err


def test_missing_and_corrupt_checkpoints(tmp_path):
    proc = run_ganrun("sample", "ckpt=nowhere.ckpt", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    proc = run_ganrun("sample", "ckpt=bad.ckpt", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr
