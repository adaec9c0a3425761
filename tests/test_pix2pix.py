"""task=pix2pix from the command line: every generator/discriminator option trains, pairs
from a paired folder and derived by each degradation, the sample grid, exact resume after
SIGKILL, bf16, `ganrun eval` with metrics=paired and `ganrun translate` on odd-sized images."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import warm
from conftest import image_steps, run_ganrun, scalars
from fakedata import write_image_folder, write_mnist
from test_paired_parts import write_folders, write_side_by_side

TINY = ["task=pix2pix", "debug=tiny", "seed=3"]
MNIST = ["dataset=mnist", "dataset.download=false", "dataset.batch_size=4"]
TAGS = {"loss/g", "loss/g_l1", "loss/g_adv", "loss/d", "d/real", "d/fake", "lr/g", "lr/d"}


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("mnist") / "data", n_train=32, n_test=8)


def train(run: Path, *extra, cwd, check=True):
    return run_ganrun("train", *TINY, f"hydra.run.dir={run}", *extra, cwd=cwd, check=check)


@pytest.fixture(scope="module")
def runs(mnist, tmp_path_factory) -> dict[str, Path]:
    """Three trained runs shared by the tests: super-resolution x2, inpainting, edges -> image."""
    base = tmp_path_factory.mktemp("pix2pix")
    options = {
        "sr": ["model=srresnet", "degrade=downscale", "task.degrade.factor=2",
               "model.generator.n_blocks=1", "task.pixel_warmup=1"],
        "inpaint": ["model=pix2pix_resnet", "degrade=mask", "model.generator.n_blocks=1",
                    "task.hole_weight=4"],
        # with the paired metrics during training (PSNR/SSIM only: no FID weights needed)
        "edges": ["model=pix2pix", "degrade=edges", "metrics=paired", "metrics.num_samples=4",
                  "metrics.evaluate.paired.fid_samples=0"],
    }
    for name, extra in options.items():
        train(base / name, *MNIST, f"dataset.root={mnist}", "trainer.max_steps=3", *extra,
              cwd=base)
    return {name: base / name for name in options}


def test_derived_pairs_train_with_the_reference_tags(runs):
    for name, run in runs.items():
        logged = scalars(run)
        assert TAGS <= set(logged), name
        assert [step for step, _ in logged["loss/g"]] == [1, 2, 3]
        assert image_steps(run) == [1, 3]
        state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        assert {k.split(".")[2] for k in state["state_dict"] if k.startswith("task.nets.")} == \
            {"G", "D"}
    logged = scalars(runs["edges"])
    assert [step for step, _ in logged["metrics/psnr"]] == [3] and "metrics/ssim" in logged
    # SR: D waits during the pixel warm-up (1 batch): 2 D updates for 3 G updates
    state = torch.load(runs["sr"] / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["counters"] == {"batches": 3, "D": 2, "G": 3}
    assert [step for step, _ in scalars(runs["sr"])["loss/g_adv"]] == [2, 3]


def test_sample_grid_rows_are_input_output_target(runs):
    # 2 columns of 28x28 images (with make_grid's 2-pixel padding), 3 rows
    grid = Image.open(runs["sr"] / "samples" / "step_0000003.png")
    assert grid.size == (2 * 30 + 2, 3 * 30 + 2)
    state = torch.load(runs["inpaint"] / "checkpoints" / "last.ckpt", weights_only=True)
    fixed_a = state["state_dict"]["task.fixed_a"]
    assert fixed_a.shape == (2, 2, 28, 28) and fixed_a[:, 1, 7:21, 7:21].eq(1).all()
    fixed_sr = torch.load(runs["sr"] / "checkpoints" / "last.ckpt",
                          weights_only=True)["state_dict"]["task.fixed_a"]
    assert fixed_sr.shape == (2, 1, 14, 14)


@pytest.mark.parametrize("extra", [
    ["model=pix2pix", "model.generator.norm=instance", "model.discriminator.norm=none",
     "loss=lsgan"],
    ["model=pix2pix_resnet", "model.generator.n_blocks=1", "model.discriminator.norm=instance",
     "loss=hinge", "degrade=grayscale"],
    ["model=srresnet", "model.generator.n_blocks=1", "degrade=downscale",
     "model.discriminator.norm=none", "loss=wgan_gp"],
    ["model=pix2pix", "loss=ragan", "degrade=mask", "task.degrade.train_masks=random"],
], ids=["unet-instance-lsgan", "resnet-hinge-gray", "srresnet-x4-wgan_gp", "unet-ragan-mask"])
def test_every_network_option_trains(extra, tmp_path):
    """Each generator (U-Net, ResNet, SRResNet) with each norm and several losses trains on
    RGB images (an image_folder) for two iterations."""
    root = write_image_folder(tmp_path / "images", per_class=2)
    degrade = [] if any(e.startswith("degrade=") for e in extra) else ["degrade=edges"]
    train(tmp_path / "run", "dataset=image_folder", f"dataset.root={root}",
          "dataset.image_size=16", "dataset.batch_size=2", "dataset.num_workers=0",
          "trainer.max_steps=2", *degrade, *extra, cwd=tmp_path)
    assert {"loss/g", "loss/d"} <= set(scalars(tmp_path / "run"))


@pytest.mark.parametrize("layout", ["side_by_side", "folders"])
def test_paired_folders_train_with_the_facades_preset(layout, tmp_path):
    root = (write_side_by_side if layout == "side_by_side" else write_folders)(
        tmp_path / "pairs", size=16)
    run = tmp_path / "run"
    train(run, "experiment=pix2pix_facades", f"dataset.root={root}", "dataset.load_size=18",
          "dataset.crop_size=16", "dataset.num_workers=0", "dataset.batch_size=2",
          "trainer.max_epochs=2", "scheduler.n_constant=1", "scheduler.n_decay=1", cwd=tmp_path)
    logged = scalars(run)
    assert [step for step, _ in logged["loss/g"]] == [1, 2]  # 3 pairs, batches of 2: 1 a epoch
    # the reference's linear decay by epoch: epoch 0 at the full rate, epoch 1 at 1 - 1/2
    assert [v for _, v in logged["lr/g"]] == pytest.approx([2e-4, 1e-4])
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "UnetGenerator" in config and "lambda_l1: 100.0" in config


def test_translate_odd_sized_images(runs, tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    Image.new("L", (17, 9), 90).save(source / "a.png")
    Image.new("RGB", (30, 21), (200, 10, 10)).save(source / "sub" / "b.jpg")

    def sizes(out: str) -> list[tuple[int, int]]:
        return [Image.open(tmp_path / out / n).size for n in ("a.png", "sub/b.jpg")]

    for name, scale in (("sr", 2), ("edges", 1), ("inpaint", 1)):
        proc = run_ganrun("translate", f"ckpt={runs[name] / 'checkpoints' / 'last.ckpt'}",
                          "in=in", f"out={name}", cwd=tmp_path)
        assert "Translated 2 image(s)" in proc.stdout
        assert sizes(name) == [(17 * scale, 9 * scale), (30 * scale, 21 * scale)], name


def test_translate_inpaints_only_the_masked_pixels(runs, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "masks").mkdir()
    Image.new("L", (15, 11), 200).save(tmp_path / "in" / "x.png")
    hole = Image.new("L", (15, 11), 0)
    hole.paste(255, (3, 2, 8, 6))
    hole.save(tmp_path / "masks" / "x.bmp")
    ckpt = runs["inpaint"] / "checkpoints" / "last.ckpt"
    run_ganrun("translate", f"ckpt={ckpt}", "in=in", "out=out", "mask=masks", cwd=tmp_path)
    out = torch.tensor(list(Image.open(tmp_path / "out" / "x.png").convert("L").getdata()))
    known = torch.tensor(list(hole.getdata())) == 0
    assert out[known].eq(200).all()  # the known pixels are kept
    refused = run_ganrun("translate", f"ckpt={ckpt}", "in=in", "out=o2", "mask=nowhere",
                         cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "does not exist" in refused.stderr
    (tmp_path / "masks" / "x.bmp").unlink()
    refused = run_ganrun("translate", f"ckpt={ckpt}", "in=in", "out=o3", "mask=masks",
                         cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "no mask for x.png" in refused.stderr
    refused = run_ganrun("translate", f"ckpt={runs['sr'] / 'checkpoints' / 'last.ckpt'}",
                         "in=in", "out=o4", "direction=BtoA", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "it translates AtoB; leave out direction=" in refused.stderr


def test_eval_reports_psnr_ssim_fid_and_the_baselines(runs, tmp_path, with_torch_home):
    values = {}
    for name in ("sr", "inpaint"):
        proc = run_ganrun("eval", f"ckpt={runs[name] / 'checkpoints' / 'last.ckpt'}",
                          "metrics=paired", "num_samples=8",
                          "metrics.evaluate.paired.fid_samples=4", cwd=tmp_path)
        values[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "fid", "fid_bicubic"} <= \
        set(values["sr"])
    assert {"psnr_hole", "ssim_hole", "psnr_hole_fill", "ssim_hole_fill", "fid",
            "fid_fill"} <= set(values["inpaint"])
    assert values["sr"]["num_samples"] == 8 and values["sr"]["fid_samples"] == 4
    # the baselines are measured on the same (fixed) pairs: the same values on every run
    again = run_ganrun("eval", f"ckpt={runs['sr'] / 'checkpoints' / 'last.ckpt'}",
                       "metrics=paired", "num_samples=8", "metrics.evaluate.paired.fid_samples=0",
                       cwd=tmp_path)
    assert json.loads(again.stdout.strip().splitlines()[-1])["psnr_bicubic"] == \
        values["sr"]["psnr_bicubic"]


def test_bad_requests_get_one_paragraph(mnist, tmp_path):
    proc = train(tmp_path / "r1", *MNIST, f"dataset.root={mnist}", "model=pix2pix",
                 cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "degrade=downscale" in proc.stderr
    proc = train(tmp_path / "r2", *MNIST, f"dataset.root={mnist}", "degrade=downscale",
                 "model=pix2pix", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "model=srresnet" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_ganrun("train", "task=pix2pix", "degrade=edges", "hardware=cpu", *MNIST,
                      f"dataset.root={mnist}", f"hydra.run.dir={tmp_path / 'r3'}",
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "model=pix2pix" in proc.stderr


def test_measure_script_smoke_run_in_two_stages(fashion_root, tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "measure_paired.py"
    common = [str(script), "--root", str(fashion_root), "--steps", "2",
              "--num-samples", "8", "--fid-samples", "0", "--out", str(tmp_path / "runs"),
              "--only", "inpaint_fashion_mnist"]
    trained = warm.run([*common, "--stage", "train", "--", "hardware=cpu"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    measured = warm.run([*common, "--stage", "eval"], cwd=tmp_path, capture_output=True,
                        text=True, timeout=600)
    assert measured.returncode == 0, measured.stderr[-3000:]
    assert "| inpaint_fashion_mnist | psnr_hole (dB) |" in measured.stdout
    values = json.loads((tmp_path / "runs" / "inpaint_fashion_mnist" /
                         "paired_metrics.json").read_text())
    assert values["num_samples"] == 8 and "psnr_hole_fill" in values
