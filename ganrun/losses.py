"""GAN objectives. A loss has a discriminator side and a generator side on raw D outputs.

Adding a loss means one class here (or anywhere importable) and one YAML in ``conf/loss/``.
"""

import torch
import torch.nn.functional as F


class GANLoss:
    """Base class: ``d_loss`` and ``g_loss`` take raw discriminator outputs (logits)."""

    # D calls a sample real when its output is above this (for the logged D accuracy).
    threshold = 0.0

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
    """LSGAN (Mao et al. 2017) with targets a=0, b=c=1."""

    threshold = 0.5

    def d_loss(self, real, fake):
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())

    def g_loss(self, fake, real=None):
        return 0.5 * (fake - 1).square().mean()


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def d_loss(self, real, fake):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake, real=None):
        return -fake.mean()
