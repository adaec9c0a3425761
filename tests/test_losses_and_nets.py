import math

import pytest
import torch

from ganrun.errors import UserError
from ganrun.training.losses import Hinge, LeastSquares, Minimax, NonSaturating
from ganrun.nets import dcgan, mlp

ZERO = torch.zeros(4)
ONE = torch.ones(4)


@pytest.mark.parametrize("loss, d_value, g_value", [
    (NonSaturating(), 2 * math.log(2), math.log(2)),    # D(x) = 1/2 everywhere
    (Minimax(), 2 * math.log(2), -math.log(2)),
    (LeastSquares(), 0.5, 0.5),
    (Hinge(), 2.0, 0.0),
])
def test_losses_at_zero_logits(loss, d_value, g_value):
    assert loss.d_loss(ZERO, ZERO).item() == pytest.approx(d_value)
    assert loss.g_loss(ZERO).item() == pytest.approx(g_value)


def test_losses_reward_the_right_side():
    for loss in (NonSaturating(), Minimax(), LeastSquares(), Hinge()):
        # D scoring reals high and fakes low has a lower D loss than the reverse...
        assert loss.d_loss(ONE, -ONE) < loss.d_loss(-ONE, ONE)
        # ...and G prefers fakes that D scores as real.
        assert loss.g_loss(ONE) < loss.g_loss(-ONE)


def test_minimax_saturates_where_non_saturating_does_not():
    fake = torch.full((4,), -8.0, requires_grad=True)   # D confidently rejects the fakes
    grads = []
    for loss in (Minimax(), NonSaturating()):
        (grad,) = torch.autograd.grad(loss.g_loss(fake), fake)
        grads.append(grad.abs().sum().item())
    assert grads[0] < 1e-3 < grads[1]


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (64, 3), (16, 1)])
def test_dcgan_adapts_to_the_data_shape(size, channels):
    g = dcgan.Generator(latent_dim=10, channels=channels, image_size=size, width=8)
    d = dcgan.Discriminator(channels=channels, image_size=size, width=8)
    images = g(torch.randn(2, 10))
    assert images.shape == (2, channels, size, size)
    assert images.abs().max() <= 1
    assert d(images).shape == (2,)


@pytest.mark.parametrize("size", [30, 3, 100])
def test_dcgan_refuses_sizes_it_cannot_make(size):
    with pytest.raises(UserError, match=f"{size}x{size}.*dataset.image_size"):
        dcgan.Generator(latent_dim=10, channels=1, image_size=size)


@pytest.mark.parametrize("norm", ["batch", "instance", "layer", "none"])
def test_dcgan_norms(norm):
    d = dcgan.Discriminator(channels=1, image_size=28, width=8, norm=norm)
    assert d(torch.randn(3, 1, 28, 28)).shape == (3,)


def test_unknown_norm_is_a_clear_error():
    with pytest.raises(UserError, match="Unknown normalization 'btach'.*batch, instance"):
        dcgan.Discriminator(channels=1, image_size=28, norm="btach")


def test_mlp_shapes():
    g = mlp.Generator(latent_dim=5, channels=3, image_size=8, hidden=(16, 32), norm="batch")
    d = mlp.Discriminator(channels=3, image_size=8, hidden=(32, 16))
    images = g(torch.randn(4, 5))
    assert images.shape == (4, 3, 8, 8)
    assert d(images).shape == (4,)
