"""CycleGAN's networks and image pool, checked against the reference implementation's design."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from ganrun.errors import UserError
from ganrun.training.image_pool import ImagePool
from ganrun.nets.init import init_normal
from ganrun.nets.patchgan import PatchDiscriminator
from ganrun.nets.resnet_generator import ResnetGenerator

SMALL = dict(width=4, n_blocks=1)


@pytest.mark.parametrize("channels", [(1, 3), (3, 1)])
@pytest.mark.parametrize("size", [(32, 32), (64, 48)])
def test_generator_keeps_size_and_maps_channels(channels, size):
    in_c, out_c = channels
    out = ResnetGenerator(in_c, out_c, **SMALL)(torch.randn(2, in_c, *size))
    assert out.shape == (2, out_c, *size)
    assert out.abs().max() <= 1


def test_one_generator_translates_several_sizes():
    generator = ResnetGenerator(3, 3, **SMALL).eval()
    assert generator(torch.randn(1, 3, 32, 32)).shape[-2:] == (32, 32)
    assert generator(torch.randn(1, 3, 20, 44)).shape[-2:] == (20, 44)


def test_generator_refuses_sizes_not_divisible_by_4():
    with pytest.raises(UserError, match=r"divisible by 4, got 30x32"):
        ResnetGenerator(3, 3, **SMALL)(torch.randn(1, 3, 30, 32))
    ResnetGenerator(3, 3, n_downsampling=1, **SMALL)(torch.randn(1, 3, 30, 32))


def test_generator_layout_matches_the_reference():
    generator = ResnetGenerator(3, 1, width=8, n_blocks=3, dropout=True)
    convs = [m for m in generator.modules() if isinstance(m, nn.Conv2d)]
    # 7x7 in, two stride-2 3x3 convs, 2 per block, 7x7 out.
    assert [c.kernel_size[0] for c in convs] == [7, 3, 3] + [3] * 6 + [7]
    assert [c.out_channels for c in convs[:3]] == [8, 16, 32]
    ups = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.output_padding) for u in ups] == [(32, 16, (1, 1)),
                                                                              (16, 8, (1, 1))]
    assert sum(isinstance(m, nn.Dropout) for m in generator.modules()) == 3
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in generator.modules()) == 2 + 2 * 3


def test_full_size_networks_have_the_reference_parameter_counts():
    # The reference prints 11.378 M for resnet_9blocks and 2.765 M for the basic PatchGAN (ngf=ndf=64).
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert round(count(ResnetGenerator(3, 3)) / 1e6, 3) == 11.378
    assert round(count(PatchDiscriminator(3)) / 1e6, 3) == 2.765


@pytest.mark.parametrize("norm, norm_type, bias", [("instance", nn.InstanceNorm2d, True),
                                                   ("batch", nn.BatchNorm2d, False)])
def test_conv_bias_only_with_instance_norm(norm, norm_type, bias):
    for net in (ResnetGenerator(3, 3, norm=norm, **SMALL), PatchDiscriminator(3, 8, norm=norm)):
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        # The first D conv and the last conv of both nets have no norm after them: always biased.
        inner = convs[1:-1] if isinstance(net, PatchDiscriminator) else convs[:-1]
        assert all((c.bias is not None) == bias for c in inner)
        assert convs[-1].bias is not None
        norms = [m for m in net.modules() if isinstance(m, norm_type)]
        assert norms and all(m.affine == (norm == "batch") for m in norms)
        assert all(not m.track_running_stats for m in norms if norm == "instance")


def test_unknown_norm_is_refused():
    with pytest.raises(UserError, match="norm='group'.*instance, batch, none"):
        ResnetGenerator(3, 3, norm="group")
    with pytest.raises(UserError, match="PatchDiscriminator"):
        PatchDiscriminator(3, norm="layer")


@torch.no_grad()
def test_init_statistics():
    torch.manual_seed(0)
    generator = ResnetGenerator(3, 3, width=32, n_blocks=2, norm="batch")
    weights = torch.cat([m.weight.flatten() for m in generator.modules()
                         if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(weights.mean()) < 1e-3 and weights.std().item() == pytest.approx(0.02, rel=0.02)
    scales = torch.cat([m.weight for m in generator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert scales.mean().item() == pytest.approx(1, abs=0.01)
    assert scales.std().item() == pytest.approx(0.02, rel=0.2)
    biases = [m.bias for m in generator.modules() if getattr(m, "bias", None) is not None]
    assert biases and all((b == 0).all() for b in biases)
    assert init_normal(nn.Linear(400, 400), gain=0.5).weight.std().item() == pytest.approx(0.5, rel=0.02)


def receptive_field(net: nn.Module) -> int:
    """The input span one output pixel sees, from the conv kernels and strides (back to front)."""
    field = 1
    for conv in reversed([m for m in net.modules() if isinstance(m, nn.Conv2d)]):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    return field


def test_patchgan_sees_70x70_patches():
    assert receptive_field(PatchDiscriminator(3, 8, n_layers=3)) == 70
    assert receptive_field(PatchDiscriminator(3, 8, n_layers=1)) == 16
    assert receptive_field(PatchDiscriminator(3, 8, n_layers=5)) == 286


def test_patchgan_layout_and_output():
    disc = PatchDiscriminator(1, width=8, n_layers=5)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 64, 64, 1]  # capped at 8 * width
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 2, 1, 1]
    assert [m for m in disc.net[:2] if isinstance(m, nn.InstanceNorm2d)] == []
    assert PatchDiscriminator(3, 8)(torch.randn(2, 3, 64, 48)).shape == (2, 1, 6, 4)
    assert PatchDiscriminator(1, 8)(torch.randn(2, 1, 32, 32)).shape == (2, 1, 2, 2)


def test_model_config_builds_both_networks():
    cfg = OmegaConf.load("conf/model/cyclegan.yaml")
    generator = instantiate(cfg.generator, in_channels=1, out_channels=3, n_blocks=1, width=4)
    disc = instantiate(cfg.discriminator, in_channels=3, width=4)
    assert generator(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    assert disc(torch.randn(1, 3, 32, 32)).shape == (1, 1, 2, 2)


def numbered(n: int, start: int = 0) -> torch.Tensor:
    """n images whose every pixel holds the image's number, so a returned image is identifiable."""
    return torch.arange(start, start + n).float().view(n, 1, 1, 1).expand(n, 2, 3, 3).clone()


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_pool_returns_inputs_while_filling():
    pool = ImagePool(4)
    assert ids(pool(numbered(3))) == [0, 1, 2]
    assert ids(pool(numbered(1, 3))) == [3]
    assert int(pool.count) == 4 and sorted(ids(pool.images)) == [0, 1, 2, 3]


def test_pool_then_swaps_half_of_the_images_for_stored_ones():
    torch.manual_seed(0)
    pool = ImagePool(5)
    pool(numbered(5))
    swapped = 0
    for step in range(400):
        new = 100 + step
        stored_before = set(ids(pool.images))
        (returned,) = ids(pool(numbered(1, new)))
        assert returned == new or returned in stored_before
        if returned != new:
            swapped += 1
            assert new in ids(pool.images) and returned not in ids(pool.images)
    assert 160 < swapped < 240


def test_pool_of_size_0_passes_images_through_detached():
    images = torch.randn(3, 1, 2, 2, requires_grad=True)
    out = ImagePool(0)(images)
    assert torch.equal(out, images) and not out.requires_grad


def test_pool_state_round_trips_through_a_checkpoint_file_and_replays_exactly(tmp_path):
    torch.manual_seed(1)
    pool = ImagePool(6)
    for step in range(5):
        pool(numbered(2, 10 * step))
    assert set(pool.state_dict()) == {"images", "count"}
    torch.save({"task": pool.state_dict()}, tmp_path / "last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["task"]
    assert state["images"].shape == (6, 2, 3, 3) and int(state["count"]) == 6

    fresh = ImagePool(6)
    fresh.load_state_dict(state)
    rng = torch.get_rng_state()
    expected = [ids(pool(numbered(2, 100 + 10 * k))) for k in range(6)]
    torch.set_rng_state(rng)
    assert [ids(fresh(numbered(2, 100 + 10 * k))) for k in range(6)] == expected
    assert torch.equal(fresh.images, pool.images)


def test_pool_refuses_another_image_shape():
    pool = ImagePool(2)
    pool(torch.zeros(1, 3, 8, 8))
    with pytest.raises(UserError, match=r"shape \(3, 8, 8\).*\(3, 4, 4\)"):
        pool(torch.zeros(1, 3, 4, 4))


def test_pool_refuses_a_checkpoint_of_another_size():
    pool = ImagePool(3)
    pool(torch.zeros(2, 1, 4, 4))
    with pytest.raises(UserError, match=r"holds 3 images but this pool has pool_size=5"):
        ImagePool(5).load_state_dict(pool.state_dict())
    ImagePool(5).load_state_dict(ImagePool(3).state_dict())  # an unused pool holds nothing yet
