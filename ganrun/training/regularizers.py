"""Discriminator regularizers, usable with any loss: penalties for D's regularization phase
and constraints applied after each D step.

A run's regularizers are the entries of the ``regularizers`` config (the ``regularizer`` group
adds one, ``loss=wasserstein`` and ``loss=wgan_gp`` add theirs). Penalties are lazy as in
StyleGAN2 (Karras et al. 2020): one with ``interval`` k is evaluated on every k-th D update
only, and multiplied by k there, so that its average strength does not depend on k.

Mixed precision: a penalty is computed entirely in fp32 with autocast disabled (D's forward on
the penalty's inputs and the ``create_graph`` input gradient), so bf16 rounding and fp16
underflow never touch the gradient being penalized. The fp32 penalty is then added to D's loss,
whose backward Lightning scales under ``16-mixed`` like any other term (the fp32 route of
PyTorch's AMP gradient-penalty notes, not the scaled-output one).
"""

import contextlib
import math

import torch
from torch import nn

from ganrun.errors import UserError

from ganrun.nets.conditioning import split_output


class Regularizer:
    """Base class: a penalty on D (``penalty``) and/or a constraint on it (``after_step``).
    ``player`` names whose update it joins; a task applies the regularizers of each player in
    that player's phases (these are all D's)."""

    player = "D"
    interval = 1  # the player's updates between two evaluations of the penalty

    def penalty(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                labels: torch.Tensor | None) -> torch.Tensor | None:
        """The unscaled penalty to add to D's loss; None for constraint-only regularizers."""
        return None

    def after_step(self, discriminator: nn.Module) -> None:
        """Called after every D update."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({vars(self)})"


def check_penalty(name: str, key: str, strength: float, interval: int) -> None:
    """A penalty's strength is 0 or more and finite, its interval at least 1."""
    if not 0 <= strength < math.inf:
        raise UserError(f"regularizers.{name}.{key} must be 0 or more and finite, got "
                        f"{strength}: a negative penalty would reward what it penalizes.")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise UserError(f"regularizers.{name}.interval must be an integer >= 1 (the penalty is "
                        f"evaluated every interval-th D update), got {interval!r}.")


@contextlib.contextmanager
def fp32_twice_differentiable(device_type: str):
    """A context for a penalty on a gradient: autocast off (fp32, see above) and network calls
    run eagerly (the graphs of ``trainer.compile`` and ``trainer.cuda_graphs`` have no double
    backward, which every penalty on a gradient needs)."""
    with torch.autocast(device_type=device_type, enabled=False), \
            torch.compiler.set_stance("force_eager"):
        yield


def input_gradient(discriminator: nn.Module, x: torch.Tensor,
                   labels: torch.Tensor | None) -> torch.Tensor:
    """d sum(D(x)) / dx per sample, flattened to (N, -1), in fp32 and differentiable."""
    x = x.detach().float().requires_grad_(True)
    with fp32_twice_differentiable(x.device.type):
        out = split_output(discriminator(x, labels))[0].float()
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)|| - 1)^2] on random
    interpolates x_hat = a real + (1 - a) fake, a ~ U(0, 1) per sample. D must not use batch
    norm (use norm=layer or none): the penalty is per sample."""

    def __init__(self, weight: float = 10.0, interval: int = 1):
        check_penalty("gradient_penalty", "weight", weight, interval)
        self.weight, self.interval = weight, interval

    def penalty(self, discriminator, real, fake, labels):
        alpha = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
        mixed = alpha * real.detach().float() + (1 - alpha) * fake.detach().float()
        norms = input_gradient(discriminator, mixed, labels).norm(dim=1)
        return self.weight * (norms - 1).square().mean()


class R1(Regularizer):
    """R1 (Mescheder et al. 2018): gamma/2 * E[||grad D(x)||^2] on real data, lazily every
    ``interval`` D updates (16 as in StyleGAN2)."""

    def __init__(self, gamma: float = 10.0, interval: int = 16):
        check_penalty("r1", "gamma", gamma, interval)
        self.gamma, self.interval = gamma, interval

    def penalty(self, discriminator, real, fake, labels):
        grad = input_gradient(discriminator, real, labels)
        return self.gamma / 2 * grad.square().sum(dim=1).mean()


class WeightClip(Regularizer):
    """WGAN's weight clipping (Arjovsky et al. 2017): every parameter of D is clamped to
    [-clip_value, clip_value] after each D update."""

    def __init__(self, clip_value: float = 0.01):
        if not 0 < clip_value < math.inf:
            raise UserError(f"regularizers.weight_clip.clip_value must be a positive finite "
                            f"number (D's weights are clamped to [-clip_value, clip_value]), "
                            f"got {clip_value}. WGAN uses 0.01.")
        self.clip_value = clip_value

    @torch.no_grad()
    def after_step(self, discriminator):
        for param in discriminator.parameters():
            param.clamp_(-self.clip_value, self.clip_value)


def d_penalties(regularizers: dict[str, Regularizer], discriminator, real: torch.Tensor,
                fake: torch.Tensor, labels: torch.Tensor | None,
                d_updates: int) -> dict[str, torch.Tensor]:
    """The penalties due at D's ``d_updates``-th update (from 0; one with interval k is due
    every k-th update), each multiplied by its interval. ``discriminator(x, labels)`` is the D
    the penalties differentiate (a conditional pix2pix D closes over its input)."""
    due = {name: reg for name, reg in regularizers.items()
           if reg.player == "D" and d_updates % reg.interval == 0}
    values = {name: reg.penalty(discriminator, real, fake, labels) for name, reg in due.items()}
    return {name: due[name].interval * value for name, value in values.items()
            if value is not None}


def after_d_step(regularizers: dict[str, Regularizer], discriminator) -> None:
    """The constraints (weight clipping) after a D update."""
    for regularizer in regularizers.values():
        if regularizer.player == "D":
            regularizer.after_step(discriminator)
