"""GAN objectives. A loss has a discriminator side and a generator side on raw D outputs.

Adding a loss means one class here (or anywhere importable) and one YAML in ``conf/loss/``.
"""

import torch
import torch.nn.functional as F


class GANLoss:
    """Base class: ``d_loss`` and ``g_loss`` take raw discriminator outputs (logits)."""

    # D calls a sample real when its output is above this (for the logged D accuracy).
    threshold = 0.0
    # True: the generator step also evaluates D on a real batch and passes it as ``real``.
    needs_real_in_g_step = False

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """``real`` is there for relativistic losses; most losses ignore it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__


class NonSaturating(GANLoss):
    """Binary cross-entropy with the non-saturating generator loss -log D(G(z))."""

    def d_loss(self, real, fake):
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(self, fake, real=None):
        return F.softplus(-fake).mean()


class Minimax(NonSaturating):
    """The original saturating game: G minimizes log(1 - D(G(z))) = -softplus(logit)."""

    def g_loss(self, fake, real=None):
        return -F.softplus(fake).mean()


class LeastSquares(GANLoss):
    """LSGAN (Mao et al. 2017) with targets a=0, b=c=1, each player's squared error times
    ``scale``: 1/2 as in the paper; 1 is the plain mean squared error of the CycleGAN and
    pix2pix reference code (which halves D's loss itself)."""

    threshold = 0.5

    def __init__(self, scale: float = 0.5):
        self.scale = scale

    def d_loss(self, real, fake):
        return self.scale * ((real - 1).square().mean() + fake.square().mean())

    def g_loss(self, fake, real=None):
        return self.scale * (fake - 1).square().mean()


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def d_loss(self, real, fake):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake, real=None):
        return -fake.mean()


class Wasserstein(GANLoss):
    """WGAN (Arjovsky et al. 2017): D is a critic whose outputs estimate the Wasserstein-1
    distance. It needs a Lipschitz critic: weight clipping (``loss=wasserstein``) or a gradient
    penalty (``loss=wgan_gp``), both in ``regularizers``."""

    def d_loss(self, real, fake):
        return fake.mean() - real.mean()

    def g_loss(self, fake, real=None):
        return -fake.mean()


class RelativisticAverage(GANLoss):
    """RaGAN (Jolicoeur-Martineau 2018), the standard (cross-entropy) variant: D estimates how
    much more realistic a real sample is than the average fake, and the reverse."""

    # The generator's loss compares fakes with the reals, so the G step evaluates D on them.
    needs_real_in_g_step = True

    def d_loss(self, real, fake):
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()

    def g_loss(self, fake, real=None):
        if real is None:
            raise ValueError("RelativisticAverage.g_loss needs the D outputs on real data")
        return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()
