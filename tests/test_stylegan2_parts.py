"""StyleGAN2's parts against their definitions: the modulated convolution, demodulation's unit
variance, the mapping's w_avg and truncation, style mixing, the lazy phases' schedule and the
path-length and R1 penalties computed by hand on tiny linear 'networks'."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganrun.training.losses import NonSaturating
from ganrun.nets.stylegan2 import (Discriminator, Generator, MinibatchStd, filter2d,
                                   fir_filter, modulated_conv2d)
from ganrun.tasks.stylegan2 import StyleGAN2


def tiny_generator(**kw) -> Generator:
    return Generator(latent_dim=8, channels=3, image_size=16, w_dim=8, mapping_layers=2,
                     channel_base=64, channel_max=8, **kw)


def naive_modulated_conv(x, weight, styles, demodulate, up=False):
    """Per sample: modulate the weight, demodulate it, run an ordinary convolution."""
    out = []
    for xi, si in zip(x, styles):
        w = weight * si.view(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        if up:
            y = F.conv_transpose2d(xi[None], w.transpose(0, 1), stride=2)
            y = filter2d(y, fir_filter() * 4, pad=(1, 1))
        else:
            y = F.conv2d(xi[None], w, padding=w.shape[-1] // 2)
        out.append(y)
    return torch.cat(out)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_equals_the_per_sample_convolution(demodulate, up):
    torch.manual_seed(0)
    x, weight = torch.randn(3, 5, 6, 6), torch.randn(4, 5, 3, 3)
    styles = torch.randn(3, 5)
    fast = modulated_conv2d(x, weight, styles, demodulate=demodulate, up=up,
                            resample_filter=fir_filter())
    assert fast.shape == (3, 4, 12 if up else 6, 12 if up else 6)
    torch.testing.assert_close(fast, naive_modulated_conv(x, weight, styles, demodulate, up),
                               atol=1e-5, rtol=1e-5)


def test_demodulated_output_has_unit_variance_at_init():
    torch.manual_seed(0)
    x = torch.randn(512, 32, 8, 8)
    weight = torch.randn(32, 32, 3, 3)
    styles = torch.randn(512, 32) + 1  # the affine layer's bias starts at 1
    out = modulated_conv2d(x, weight, styles)[:, :, 1:-1, 1:-1]  # away from the zero padding
    assert out.var().item() == pytest.approx(1.0, abs=0.03)
    assert modulated_conv2d(x, weight, styles, demodulate=False).var() > 10  # not by accident


def test_w_avg_tracks_w_in_training_mode_only():
    torch.manual_seed(0)
    G = tiny_generator()
    z = torch.randn(16, 8)
    G.train()
    w = G.mapping(z)[:, 0]
    expected = w.mean(0).detach() * (1 - 0.995)  # lerp from zeros with beta 0.995
    torch.testing.assert_close(G.mapping.w_avg, expected)
    G.eval()
    G(z)
    torch.testing.assert_close(G.mapping.w_avg, expected)


def test_truncation_zero_maps_every_latent_to_the_image_of_w_avg():
    torch.manual_seed(0)
    G = tiny_generator()
    G.train()
    for _ in range(3):
        G.mapping(torch.randn(16, 8))
    G.eval()
    images = G(torch.randn(5, 8), truncation_psi=0.0, noise_mode="const")
    w_avg = G.mapping.w_avg.view(1, 1, -1).expand(1, G.num_ws, -1)
    expected = G.synthesis(w_avg, noise_mode="const")
    torch.testing.assert_close(images, expected.expand_as(images), atol=1e-6, rtol=0)
    # a cutoff truncates only the coarse layers: the images differ again
    cut = G(torch.randn(5, 8), truncation_psi=0.0, truncation_cutoff=2, noise_mode="const")
    assert (cut - cut[:1]).abs().max() > 1e-4


def test_noise_modes():
    torch.manual_seed(0)
    G = tiny_generator().eval()
    z = torch.randn(2, 8)
    for block in G.synthesis.blocks:  # noise has no effect at init (zero strength)
        for layer in (getattr(block, "conv0", None), block.conv1):
            if layer is not None:
                layer.noise_strength.data.fill_(0.5)
    const = [G(z, noise_mode="const") for _ in range(2)]
    random = [G(z, noise_mode="random") for _ in range(2)]
    torch.testing.assert_close(const[0], const[1])
    assert not torch.allclose(random[0], random[1])
    assert not torch.allclose(G(z, noise_mode="none"), const[0])


def tiny_task(**kw) -> StyleGAN2:
    D = Discriminator(channels=3, image_size=16, channel_base=64, channel_max=8, mbstd_group=2)
    return StyleGAN2(tiny_generator(), D, NonSaturating(), latent_dim=8, **kw)


def test_style_mixing_takes_the_second_latent_from_the_drawn_layer_on():
    task = tiny_task(style_mixing_prob=1.0)
    mapping = task.generator.mapping
    z = torch.randn(4, 8)
    torch.manual_seed(5)
    w_avg = mapping.w_avg.clone()
    ws = task.mapped(z, None)
    # replay the draws: the cutoff, the coin, the second latent
    torch.manual_seed(5)
    cutoff = int(torch.randint(1, task.generator.num_ws, ()))
    torch.rand(())
    z2 = torch.randn_like(z)
    mapping.eval()
    first, second = mapping(z), mapping(z2)
    torch.testing.assert_close(ws[:, :cutoff], first[:, :cutoff])
    torch.testing.assert_close(ws[:, cutoff:], second[:, cutoff:])
    assert not torch.allclose(first[:, cutoff:], second[:, cutoff:])
    # w_avg moved once (the first latent), not by the mixing pass
    torch.testing.assert_close(mapping.w_avg, first[:, 0].mean(0).lerp(w_avg, 0.995))


def test_lazy_phases_run_at_their_intervals():
    task = tiny_task(g_reg_interval=4, d_reg_interval=16)
    due = {p.name: [b for b in range(1, 34) if p.due(b)] for p in task.phases()}
    assert [p.name for p in task.phases()] == ["G", "G_reg", "D", "D_reg"]
    assert due["G"] == due["D"] == list(range(1, 34))
    assert due["G_reg"] == list(range(1, 34, 4))  # NVIDIA's batch_idx % 4 == 0, from 0
    assert due["D_reg"] == [1, 17, 33]
    assert [p.name for p in tiny_task(pl_weight=0, r1_gamma=0).phases()] == ["G", "D"]


def test_lazy_adam_correction_is_nvidias():
    from ganrun.training.optim import lazy_regularized_adam

    opt = lazy_regularized_adam([nn.Parameter(torch.zeros(1))], lr=0.0025, betas=[0.0, 0.99],
                                reg_interval=16)
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert group["eps"] == 1e-8


class LinearStyleG(nn.Module):
    """ws = z repeated over 3 layers; image = (sum over layers of ws) @ M as a 1x2x2 image."""

    num_ws, num_classes = 3, 0

    def __init__(self):
        super().__init__()
        self.M = nn.Parameter(torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 3.0, 1.0]]))
        self.scale = nn.Parameter(torch.tensor(1.0))  # ws depend on a parameter, as in G
        self.mapping = lambda z, labels=None, update_w_avg=True: \
            z.unsqueeze(1).repeat(1, 3, 1) * self.scale
        self.synthesis = lambda ws: (ws.sum(1) @ self.M).view(-1, 1, 2, 2)


class LinearD(nn.Module):
    def __init__(self):
        super().__init__()
        self.V = nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.25]).view(1, 1, 2, 2))

    def forward(self, images, labels=None):
        return (images * self.V).sum([1, 2, 3])


def test_path_length_penalty_equals_the_hand_computed_value():
    task = StyleGAN2(LinearStyleG(), LinearD(), NonSaturating(), latent_dim=2, pl_weight=2.0,
                     pl_batch_shrink=2, pl_decay=0.01, style_mixing_prob=0.0)
    task.pl_mean.fill_(0.3)
    z = torch.randn(4, 2)
    torch.manual_seed(1)
    loss, stats = task.path_length_loss(z, None, interval=4)
    torch.manual_seed(1)
    y = torch.randn(2, 4) / math.sqrt(4)  # the noise image, flattened (batch 4 / shrink 2)
    # d(sum(img * y)) / dw_l = M y for each of the 3 layers: length = |M y| (mean over layers)
    M = task.generator.M.detach()
    lengths = (y @ M.t()).norm(dim=1)
    pl_mean = 0.3 + 0.01 * (lengths.mean() - 0.3)
    expected = 4 * 2.0 * ((lengths - pl_mean) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert task.pl_mean.item() == pytest.approx(pl_mean.item(), rel=1e-6)
    assert stats["reg/pl_mean"].item() == pytest.approx(pl_mean.item(), rel=1e-6)


def test_r1_penalty_equals_the_hand_computed_value():
    task = StyleGAN2(LinearStyleG(), LinearD(), NonSaturating(), latent_dim=2, r1_gamma=0.5)
    real = torch.randn(3, 1, 2, 2)
    loss, stats = task.r1_loss(real, None, interval=16)
    # grad_x D(x) = V for every image: |V|^2 = 0.25 + 1 + 4 + 0.0625
    assert stats["reg/r1_penalty"].item() == pytest.approx(5.3125)
    assert loss.item() == pytest.approx(16 * 0.5 / 2 * 5.3125)


@pytest.mark.parametrize("penalty", ["r1", "path_length"])
def test_stylegan2_penalties_are_computed_in_fp32_under_bf16_autocast(penalty):
    task = tiny_task(style_mixing_prob=0.0)
    real, z = torch.randn(4, 3, 16, 16), torch.randn(4, 8)

    def value():
        task.pl_mean.zero_()
        torch.manual_seed(2)
        if penalty == "r1":
            return task.r1_loss(real, None, interval=16)[0]
        return task.path_length_loss(z, None, interval=4)[0]

    exact, exact_out = value(), task.discriminate(real, None)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not torch.equal(task.discriminate(real, None)[0], exact_out)  # autocast reaches D
        mixed = value()
    assert mixed.dtype == torch.float32 and mixed.item() == exact.item()


def test_minibatch_std_groups():
    x = torch.randn(8, 4, 4, 4)
    y = MinibatchStd(group_size=4)(x)
    assert y.shape == (8, 5, 4, 4)
    # sample i is in group i % 2 (NVIDIA's reshape(G, -1, ...)): samples 0, 2, 4, 6
    group = x[0::2]
    expected = (group.var(0, unbiased=False) + 1e-8).sqrt().mean()
    assert y[0, 4, 0, 0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert MinibatchStd(group_size=4)(torch.randn(6, 4, 4, 4)).shape == (6, 5, 4, 4)


@pytest.mark.parametrize("architecture", ["resnet", "orig"])
def test_discriminator_shapes_and_conditional_projection(architecture):
    D = Discriminator(channels=3, image_size=32, num_classes=5, architecture=architecture,
                      channel_base=128, channel_max=16, mbstd_group=2)
    images = torch.randn(4, 3, 32, 32)
    out = D(images, torch.tensor([0, 1, 2, 3]))
    assert out.shape == (4,)
    assert not torch.allclose(out, D(images, torch.tensor([4, 4, 4, 4])))


def test_channels_follow_channel_base_and_max():
    G = Generator(latent_dim=8, channels=1, image_size=32, w_dim=8, channel_base=256,
                  channel_max=32)
    widths = [block.conv1.weight.shape[0] for block in G.synthesis.blocks]
    assert widths == [32, 32, 16, 8]  # min(256 / res, 32) at 4, 8, 16, 32
    assert G.num_ws == 8 and G(torch.randn(2, 8)).shape == (2, 1, 32, 32)


def test_bad_image_size_is_a_clear_error():
    from ganrun.errors import UserError

    with pytest.raises(UserError, match="dataset.image_size=32"):
        Generator(latent_dim=8, channels=1, image_size=28)
