"""The parts of paired translation (task=pix2pix): its networks, the paired folder data, the
degradations that derive pairs, the metrics, and the task's losses computed by hand."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fakenets import Scale
from ganrun.data.degrade import Downscale, Edges, Grayscale, Mask, diffusion_fill, split_mask
from ganrun.data.paired import PairedFolder
from ganrun.errors import UserError
from ganrun.nets.srresnet import SRResNet
from ganrun.nets.unet_generator import UnetGenerator, downs_for


# --- Networks -----------------------------------------------------------------------------------

def test_unet_256_has_the_reference_layout_and_parameter_count():
    # The reference prints 54.414 M for unet_256 (ngf 64, batch norm, dropout).
    net = UnetGenerator(3, 3, image_size=256)
    assert net.num_downs == 8
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == 54.414
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3  # the inner 8*ngf blocks
    # two per middle block (6), one after the innermost up-conv, none in the outermost
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 13


@pytest.mark.parametrize("size, downs", [(28, 2), (32, 5), (16, 4), (256, 8), (512, 8)])
def test_unet_depth_follows_the_image_size(size, downs):
    assert downs_for(size) == downs
    net = UnetGenerator(2, 1, image_size=size, width=4) if size <= 32 else None
    if net is not None:
        x = torch.randn(2, 2, size, size)
        assert net(x).shape == (2, 1, size, size)


def test_unet_skip_connections_carry_the_input():
    """With the innermost blocks zeroed, the output still depends on the input through skips."""
    net = UnetGenerator(1, 1, image_size=16, width=4).eval()
    x = torch.randn(1, 1, 16, 16)
    y = x.clone()
    y[..., 0, 0] += 1
    assert not torch.equal(net(x), net(y))
    with pytest.raises(UserError, match="divisible by 16"):
        net(torch.randn(1, 1, 20, 20))


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("size", [(7, 7), (9, 14)])
def test_srresnet_output_is_the_input_times_the_factor(scale, size):
    net = SRResNet(3, 3, scale=scale, width=8, n_blocks=2)
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert out.abs().max() <= 1
    assert sum(isinstance(m, nn.PixelShuffle) for m in net.modules()) == {1: 0, 2: 1, 4: 2}[scale]


def test_srresnet_refuses_a_factor_that_is_not_a_power_of_two():
    with pytest.raises(UserError, match="scale=3"):
        SRResNet(1, 1, scale=3)


# --- Degradations -------------------------------------------------------------------------------

DEGRADATIONS = [Downscale(2), Downscale(4), Mask(), Mask(test_masks="random"), Edges(),
                Grayscale()]


@pytest.mark.parametrize("degrade", DEGRADATIONS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("train", [True, False])
def test_each_degradation_is_deterministic_per_image_and_seed(degrade, train):
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    first = degrade(images, [5, 6, 7, 8], train)
    assert torch.equal(first, degrade(images.clone(), [5, 6, 7, 8], train))
    # image k's result depends on image k and its seed only, not on the batch around it
    assert torch.equal(first[2:3], degrade(images[2:3], [7], train))
    channels = degrade.input_channels(3)
    assert first.shape == (4, channels, 16 // degrade.scale, 16 // degrade.scale)


def test_random_masks_differ_by_seed_and_hold_boxes_and_strokes():
    mask = Mask(max_boxes=0, max_strokes=2)
    strokes = [mask.random_mask(64, 64, seed) for seed in range(6)]
    assert len({s.sum().item() for s in strokes}) > 3  # different seeds, different masks
    assert all(0 < s.mean() < 0.6 for s in strokes)
    boxes = Mask(max_boxes=1, max_strokes=0, box_min=0.25, box_max=0.25).random_mask(64, 64, 0)
    assert boxes.sum() == 16 * 16


def test_mask_inputs_hold_the_hole_and_the_mask_channel():
    images = torch.rand(2, 3, 20, 20) * 2 - 1
    inputs = Mask(center=0.5)(images, [0, 1], train=False)
    known, mask = split_mask(inputs)
    assert mask[0, 0, 5:15, 5:15].eq(1).all() and mask.sum() == 2 * 100  # the centre box
    assert torch.equal(known[:, :, 5:15, 5:15], torch.zeros(2, 3, 10, 10))
    assert torch.equal(known * (1 - mask), images * (1 - mask))


def test_fill_baselines_recover_smooth_images():
    """On a linear ramp, harmonic (diffusion) fill is exact; the bicubic baseline of a smooth
    image is close."""
    ramp = torch.linspace(-1, 1, 24).view(1, 1, 1, 24).expand(1, 1, 24, 24).clone()
    inputs = Mask(center=0.5)(ramp, [0], train=False)
    _, filled = Mask(center=0.5, fill_iterations=2000).baseline(inputs)
    assert torch.allclose(filled, ramp, atol=1e-3)
    name, up = Downscale(2).baseline(Downscale(2)(ramp, None, True))
    assert name == "bicubic" and up.shape == ramp.shape and (up - ramp).abs().mean() < 0.02
    known, mask = split_mask(inputs)
    assert torch.equal(diffusion_fill(known, mask, 1) * (1 - mask), ramp * (1 - mask))


def test_degradation_options_are_checked():
    with pytest.raises(UserError, match="degrade.factor"):
        Downscale(1)
    with pytest.raises(UserError, match="train_masks"):
        Mask(train_masks="squares")
    with pytest.raises(UserError, match="divisible by 4"):
        Downscale(4)(torch.zeros(1, 1, 10, 10), None, True)


# --- Metrics ------------------------------------------------------------------------------------

def test_psnr_and_ssim_equal_torchmetrics_on_known_images():
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

    from ganrun.metrics.paired import hole_psnr, psnr, ssim

    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(4, 3, 32, 32, generator=generator) * 2 - 1
    outputs = (targets + 0.2 * torch.randn(4, 3, 32, 32, generator=generator)).clamp(-1, 1)
    unit = lambda x: (x + 1) / 2  # noqa: E731
    per_image = [PeakSignalNoiseRatio(data_range=1.0)(unit(o[None]), unit(t[None]))
                 for o, t in zip(outputs, targets)]
    assert psnr(outputs, targets) == pytest.approx(torch.stack(per_image).mean().item(), rel=1e-5)
    assert ssim(outputs, targets) == pytest.approx(
        StructuralSimilarityIndexMeasure(data_range=1.0)(unit(outputs), unit(targets)).item(),
        rel=1e-5)
    # a known value: uniform error 0.1 in [0, 1] is 20 dB
    assert psnr(torch.full((1, 1, 8, 8), 0.2), torch.zeros(1, 1, 8, 8)) == pytest.approx(20.0)
    mask = torch.zeros(4, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    pasted = outputs * mask + targets * (1 - mask)
    mse = ((unit(pasted) - unit(targets)) ** 2 * mask).sum((1, 2, 3)) / (mask.sum((1, 2, 3)) * 3)
    assert hole_psnr(pasted, targets, mask) == pytest.approx(
        (10 * torch.log10(1 / mse)).mean().item(), rel=1e-5)


# --- Paired folders -----------------------------------------------------------------------------

def pattern(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def write_side_by_side(root: Path, counts=None, size: int = 12) -> Path:
    """A|B images; the right half is the left half inverted (so a pair is recognizable)."""
    for split, n in (counts or {"train": 3, "test": 2}).items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            left = pattern(size, i + 10 * len(split))
            Image.fromarray(np.concatenate([left, 255 - left], 1)).save(root / split / f"{i}.png")
    return root


def write_folders(root: Path, size: int = 12) -> Path:
    for split, n in (("train", 3), ("test", 2)):
        for side in "AB":
            (root / side / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            left = pattern(size, i)
            Image.fromarray(left).save(root / "A" / split / f"{i}.png")
            # names match without their extensions (lossless .bmp: pairs stay exact)
            Image.fromarray(255 - left).save(root / "B" / split / f"{i}.bmp" if i else
                                            root / "B" / split / f"{i}.png")
    return root


def paired(root, **options) -> PairedFolder:
    options = {"load_size": 14, "crop_size": 12, "batch_size": 2, "num_workers": 0, **options}
    return PairedFolder(root=str(root), **options)


@pytest.mark.parametrize("layout", ["side_by_side", "folders"])
def test_both_layouts_load_pairs_with_the_same_crop_and_flip(layout, tmp_path):
    root = (write_side_by_side if layout == "side_by_side" else write_folders)(tmp_path / "d")
    data = paired(root)
    batches = list(data.train_dataloader())
    assert len(batches) == 1 and batches[0]["A"].shape == (2, 3, 12, 12)
    tolerance = 0.02  # resizing is per side: rounding differs a little
    for batch in batches:
        # B is A inverted pixel for pixel: the same window and flip were applied to both
        assert (batch["A"] + batch["B"]).abs().mean() < tolerance
    test = data.with_split("test")
    test.drop_last = False
    test.setup()
    fixed = test.dataset.fixed_items(2)
    assert (fixed["A"] + fixed["B"]).abs().mean() < tolerance
    swapped = paired(root, direction="BtoA").with_split("test")
    swapped.setup()
    assert torch.equal(swapped.dataset.fixed_items(2)["A"], fixed["B"])


def test_a_test_split_falls_back_to_val(tmp_path):
    root = write_side_by_side(tmp_path / "facades", {"train": 2, "val": 1})
    test = paired(root, batch_size=1).with_split("test")
    test.setup()
    assert test.dataset.size_a == 1


def test_an_unmatched_file_is_refused_by_name(tmp_path):
    root = write_folders(tmp_path / "d")
    Image.fromarray(pattern(12, 0)).save(root / "A" / "train" / "extra.png")
    with pytest.raises(UserError, match=r"extra\.png has no partner in .*B/train") as err:
        paired(root).setup()
    assert "1 file(s) of A/" in str(err.value)


def test_wrongly_sized_files_are_refused_by_name(tmp_path):
    root = write_folders(tmp_path / "d")
    Image.fromarray(pattern(10, 0)).save(root / "B" / "train" / "1.bmp")
    with pytest.raises(UserError, match=r"1\.bmp is 10x10 but its partner .*1\.png is 12x12"):
        paired(root).setup()
    odd = write_side_by_side(tmp_path / "e")
    Image.new("RGB", (25, 12)).save(odd / "train" / "9.png")
    with pytest.raises(UserError, match=r"9\.png is 25x12.*width must be even"):
        paired(odd).setup()


def test_a_missing_layout_is_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="root/train and root/test"):
        paired(tmp_path / "empty").setup()


# --- The task's losses --------------------------------------------------------------------------

class Mean(nn.Module):
    """A 'discriminator' scoring a pair by the mean of its channels."""

    def forward(self, x):
        return x.mean(1, keepdim=True)


def test_losses_equal_hand_computed_values_and_d_comes_first():
    from ganrun.training.losses import LeastSquares
    from ganrun.tasks.base import Phase, Step
    from ganrun.tasks.pix2pix import Pix2Pix

    task = Pix2Pix(Scale(0.5), Mean(), LeastSquares(scale=1.0), input_channels=1,
                   output_channels=1, image_size=2, lambda_l1=100.0)
    assert [p.name for p in task.phases()] == ["D", "G"]
    a, b = torch.full((1, 1, 2, 2), 0.4), torch.full((1, 1, 2, 2), 0.8)
    batch = task.begin_batch({"A": a, "B": b}, Step())
    _, g = task.phase_loss(Phase("G", "G"), batch, Step())
    # fake = 0.2; L1 = |0.2 - 0.8| = 0.6; D(pair) = (0.4 + 0.2) / 2 = 0.3; LSGAN g: (0.3 - 1)^2
    assert g["loss/g_l1"].item() == pytest.approx(100 * 0.6)
    assert g["loss/g_adv"].item() == pytest.approx(0.7 ** 2)
    assert g["loss/g"].item() == pytest.approx(60 + 0.49)
    _, d = task.phase_loss(Phase("D", "D"), batch, Step())
    # D(real pair) = 0.6, D(fake pair) = 0.3: halved (0.4^2 + 0.3^2)
    assert d["loss/d"].item() == pytest.approx(0.5 * (0.4 ** 2 + 0.3 ** 2))


def test_hole_weight_scales_the_l1_inside_the_hole():
    from ganrun.training.losses import NonSaturating
    from ganrun.tasks.pix2pix import Pix2Pix

    task = Pix2Pix(Scale(0.0), Mean(), NonSaturating(), input_channels=2, output_channels=1,
                   image_size=4, degrade=Mask(), lambda_l1=1.0, hole_weight=3.0)
    targets = torch.ones(1, 1, 4, 4)
    inputs = Mask(center=0.5)(targets, [0], train=False)
    loss, stats = task.generator_loss(inputs, targets, warmup=True)
    # G outputs 0 and the known pixels are pasted back: error 1 on the 4 hole pixels, x3
    assert stats["loss/g_l1"].item() == pytest.approx(3 * 4 / 16)
    assert "loss/g_adv" not in stats  # pixel warm-up: L1 alone


# --- Configs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["downscale", "mask", "edges", "grayscale"])
def test_every_degrade_option_composes_and_builds(option, tmp_path):
    from hydra.utils import instantiate

    from test_config import composed

    cfg = composed("task=pix2pix", "model=pix2pix", f"degrade={option}", tmp_path=tmp_path)
    degrade = instantiate(cfg.task.degrade)
    assert degrade(torch.zeros(1, 1, 28, 28), [0], train=True).shape[0] == 1


def test_a_misspelled_degrade_key_fails_early(tmp_path):
    from test_config import composed

    with pytest.raises(UserError, match=r"task.degrade.centre.*Did you mean `center`"):
        composed("task=pix2pix", "degrade=mask", "+task.degrade.centre=0.3", tmp_path=tmp_path)


@pytest.mark.parametrize("preset, shape, input_shape, output_side", [
    ("pix2pix_facades", {"channels_a": 3, "channels_b": 3, "channels": 3, "image_size": 256},
     (1, 3, 256, 256), 256),
    ("srgan_x4", {"channels": 3, "image_size": 96}, (1, 3, 24, 24), 96),
    ("inpaint_center", {"channels": 3, "image_size": 128}, (1, 4, 128, 128), 128),
    ("sr_fashion_mnist", {"channels": 1, "image_size": 28}, (2, 1, 14, 14), 28),
    ("inpaint_fashion_mnist", {"channels": 1, "image_size": 28}, (2, 2, 28, 28), 28),
    ("pix2pix_fashion_mnist", {"channels": 1, "image_size": 28}, (2, 1, 28, 28), 28),
])
def test_every_paired_preset_builds_its_module(preset, shape, input_shape, output_side,
                                               tmp_path):
    from test_config import composed

    from ganrun.runner.build import build_module

    cfg = composed(f"experiment={preset}", "dataset.root=/x", tmp_path=tmp_path)
    module = build_module(cfg, {"num_classes": 0, "class_names": None, **shape})
    out = module.task.inference().translate(torch.zeros(input_shape))
    assert out.shape[-2:] == (output_side, output_side)
    assert module.task.phases()[0].name == "D"


def test_reference_test_mode_is_repeatable_per_image_and_leaves_g_untouched():
    from ganrun.training.losses import NonSaturating
    from ganrun.tasks.pix2pix import Pix2Pix

    def task(mode, dropout=True):
        torch.manual_seed(0)
        G = UnetGenerator(1, 1, image_size=64, width=2, num_downs=6, dropout=dropout)
        return Pix2Pix(G, Mean(), NonSaturating(), input_channels=1, output_channels=1,
                       image_size=64, test_mode=mode)

    reference, plain = task("train"), task("eval")
    images = torch.randn(3, 1, 64, 64)
    before = {k: v.clone() for k, v in reference.state_dict().items()}
    state = torch.get_rng_state()
    first = reference.inference().translate(images)
    assert torch.equal(torch.get_rng_state(), state)  # training's random stream not moved
    assert torch.equal(first, reference.inference().translate(images))  # repeatable
    # each image on its own batch-norm statistics, as the reference's batches of 1
    no_dropout = task("train", dropout=False).inference()
    assert torch.equal(no_dropout.translate(images)[1:2], no_dropout.translate(images[1:2]))
    assert sum(isinstance(m, nn.Dropout) for m in reference.modules()) == 1
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in before.items())
    assert not torch.allclose(first, plain.inference().translate(images))
    with pytest.raises(UserError, match="task.test_mode"):
        task("test")
