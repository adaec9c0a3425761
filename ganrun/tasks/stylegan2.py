"""StyleGAN2 (Karras et al. 2020) training, after NVIDIA's stylegan2-ada-pytorch ``loss.py`` and
``training_loop.py``.

Each batch runs four phases in NVIDIA's order:
- ``G``: the generator's main loss (``loss``, non-saturating logistic by default) on fakes;
- ``G_reg``: path-length regularization, every ``g_reg_interval`` batches, on a batch shrunk by
  ``pl_batch_shrink``: ``pl_weight * (|J_w^T y| - a)^2`` with y image-sized noise and ``a`` the
  running mean ``pl_mean`` (decay ``pl_decay``), a buffer, so checkpoints hold it;
- ``D``: D's main loss on reals and fakes;
- ``D_reg``: lazy R1, every ``d_reg_interval`` batches: ``r1_gamma / 2 * |grad_x D(x)|^2`` on
  reals.
A lazy phase's loss is multiplied by its interval; the optimizers' learning rate and betas are
corrected for the extra steps by ``ganrun.optim.lazy_regularized_adam``. The generator's latents
go through style mixing (``style_mixing_prob``: a second latent's w from a random layer on).
The EMA generator is updated once per batch after D's main phase, as NVIDIA updates it after
all phases of a batch (D's phases leave G unchanged). D sees every image through ``augment``
(DiffAugment) in all phases; R1 differentiates with respect to the un-augmented reals.
"""

import math

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.generate import run_generator
from ganrun.tasks.base import Phase
from ganrun.tasks.generation import Generation


class StyleGAN2(Generation):
    iteration_phase = "G"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss, latent_dim: int,
                 r1_gamma: float = 10.0, d_reg_interval: int = 16, pl_weight: float = 2.0,
                 g_reg_interval: int = 4, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 style_mixing_prob: float = 0.9, augment=None, ema=None, num_fixed: int = 64):
        super().__init__(generator, discriminator, loss, latent_dim, augment=augment, ema=ema,
                         num_fixed=num_fixed)
        for name, value in (("d_reg_interval", d_reg_interval),
                            ("g_reg_interval", g_reg_interval),
                            ("pl_batch_shrink", pl_batch_shrink)):
            if value < 1:
                raise UserError(f"task.{name} must be at least 1, got {value}.")
        if not 0 <= style_mixing_prob <= 1:
            raise UserError(f"task.style_mixing_prob must be in [0, 1], got {style_mixing_prob}.")
        self.r1_gamma, self.d_reg_interval = r1_gamma, d_reg_interval
        self.pl_weight, self.g_reg_interval = pl_weight, g_reg_interval
        self.pl_batch_shrink, self.pl_decay = pl_batch_shrink, pl_decay
        self.style_mixing_prob = style_mixing_prob
        self.register_buffer("pl_mean", torch.zeros([]))

    def phases(self):
        phases = [Phase("G", "G")]
        if self.pl_weight:
            phases.append(Phase("G_reg", "G", interval=self.g_reg_interval))
        phases.append(Phase("D", "D"))
        if self.r1_gamma:
            phases.append(Phase("D_reg", "D", interval=self.d_reg_interval))
        return phases

    def phase_loss(self, phase, batch, runner):
        real, labels = batch
        labels = labels if self.num_classes else None
        if phase.name == "G":
            return self.generator_loss(real, labels)
        if phase.name == "G_reg":
            return self.path_length_loss(self.sample_z(len(real)), labels, phase.interval)
        if phase.name == "D":
            return self.discriminator_loss(real, labels, 0)
        return self.r1_loss(real, labels, phase.interval)

    def after_update(self, phase, batch, runner):
        if phase.name == "D" and self.ema is not None:
            images = len(batch[0]) * runner.trainer.world_size
            # NVIDIA's ramp-up counts the images shown before this batch.
            self.ema.update(self.generator, (runner.counters["batches"] - 1) * images, images)

    # The generator's forward with style mixing.

    def mapped(self, z, labels) -> torch.Tensor:
        """ws of ``z``; with probability ``style_mixing_prob`` those from a random layer
        (1 .. num_ws - 1) on are replaced by the ws of a second latent (which, like NVIDIA's,
        leaves ``w_avg`` alone)."""
        mapping = self.generator.mapping
        ws = mapping(z, labels)
        if self.style_mixing_prob > 0:
            cutoff = int(torch.randint(1, ws.shape[1], ()))
            if float(torch.rand(())) < self.style_mixing_prob:
                second = mapping(torch.randn_like(z), labels, update_w_avg=False)
                ws = torch.cat([ws[:, :cutoff], second[:, cutoff:]], dim=1)
        return ws

    def run_generator(self, z, labels) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self.mapped(z, labels)
        return self.generator.synthesis(ws), ws

    # The phases' losses.

    def generator_loss(self, real, labels):
        fake, _ = self.run_generator(self.sample_z(len(real)), labels)
        loss = self.loss.g_loss(self.discriminate(self.augment(fake), labels)[0])
        return loss, {"loss/g": loss.detach()}

    def discriminator_loss(self, real, labels, d_updates: int):
        with torch.no_grad():
            fake, _ = self.run_generator(self.sample_z(len(real)), labels)
        real_out = self.discriminate(self.augment(real), labels)[0]
        fake_out = self.discriminate(self.augment(fake), labels)[0]
        loss = self.loss.d_loss(real_out, fake_out)
        real_out, fake_out = real_out.detach(), fake_out.detach()
        return loss, {"loss/d": loss.detach(), "d/real": real_out.mean(),
                      "d/fake": fake_out.mean(),
                      "d/acc_real": (real_out > self.loss.threshold).float().mean(),
                      "d/acc_fake": (fake_out <= self.loss.threshold).float().mean()}

    def path_length_loss(self, z, labels, interval: int):
        """``interval * pl_weight * mean((|J^T y| - pl_mean)^2)``; updates ``pl_mean``."""
        n = max(1, len(z) // self.pl_batch_shrink)
        fake, ws = self.run_generator(z[:n], None if labels is None else labels[:n])
        noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
        (grads,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
        lengths = grads.float().square().sum(2).mean(1).sqrt()
        # As NVIDIA's: the penalty's centre includes this batch (and its gradient).
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        # fake[:, 0, 0, 0] * 0 keeps every output in the graph, as NVIDIA does for DDP.
        loss = (fake[:, 0, 0, 0] * 0 + penalty * self.pl_weight).mean() * interval
        return loss, {"reg/pl_penalty": penalty.detach().mean(), "reg/pl_mean": pl_mean.detach()}

    def r1_loss(self, real, labels, interval: int):
        """``interval * r1_gamma / 2 * mean(|grad_x D(x)|^2)`` on the real images."""
        real = real.detach().float().requires_grad_(True)
        out = self.discriminate(self.augment(real), labels)[0]
        (grads,) = torch.autograd.grad(out.sum(), real, create_graph=True)
        penalty = grads.square().sum([1, 2, 3])
        loss = (out * 0 + penalty * (self.r1_gamma / 2)).mean() * interval
        return loss, {"reg/r1_penalty": penalty.detach().mean()}

    # Sampling: the training grid uses the EMA generator, truncation 1 and the constant noise
    # (NVIDIA's snapshot grids); metrics use random noise (NVIDIA's metrics).

    def sample_grid(self, nrow: int) -> torch.Tensor:
        z, labels = self.fixed_inputs(nrow)
        return run_generator(self.sampling_generator, z, labels, self.num_classes,
                             noise_mode="const")


def build(cfg, shape: dict, r1_gamma: float = 10.0, d_reg_interval: int = 16,
          pl_weight: float = 2.0, g_reg_interval: int = 4, pl_batch_shrink: int = 2,
          pl_decay: float = 0.01, style_mixing_prob: float = 0.9,
          num_fixed: int = 64) -> StyleGAN2:
    """The StyleGAN2 task: ``model.generator`` / ``model.discriminator`` (model=stylegan2),
    class-conditional with ``conditioning=projection`` (NVIDIA's label-mapping projection D)."""
    from hydra.utils import instantiate

    from ganrun.runner.build import conditioning

    size = {"channels": shape["channels"], "image_size": shape["image_size"]}
    if cfg.model.get("conditioning") and \
            not cfg.model.conditioning._target_.endswith(".Projection"):
        raise UserError("task=stylegan2 is conditioned as NVIDIA's StyleGAN2 is: a label "
                        "embedding in the mapping network and a projection discriminator. Use "
                        "conditioning=projection, or no conditioning option.")
    if cfg.get("regularizers"):
        raise UserError("task=stylegan2 regularizes with its own lazy R1 and path-length phases "
                        "(task.r1_gamma, task.pl_weight); drop the regularizer option "
                        f"({', '.join(cfg.regularizers)}) and the loss options that add one "
                        "(wasserstein, wgan_gp).")
    if cfg.trainer.n_critic != 1 or cfg.trainer.get("d_warmup_steps", 0):
        raise UserError("task=stylegan2 updates G and D once per batch each, as NVIDIA's "
                        "training loop does: trainer.n_critic must be 1 and "
                        "trainer.d_warmup_steps 0.")
    g_classes, _ = conditioning(cfg, shape)
    generator = instantiate(cfg.model.generator, latent_dim=cfg.model.latent_dim, **size,
                            **g_classes)
    return StyleGAN2(
        generator=generator,
        discriminator=instantiate(cfg.model.discriminator, **size, **g_classes),
        loss=instantiate(cfg.loss), latent_dim=cfg.model.latent_dim,
        r1_gamma=r1_gamma, d_reg_interval=d_reg_interval, pl_weight=pl_weight,
        g_reg_interval=g_reg_interval, pl_batch_shrink=pl_batch_shrink, pl_decay=pl_decay,
        style_mixing_prob=style_mixing_prob,
        augment=instantiate(cfg.augment) if cfg.get("augment") else None,
        ema=instantiate(cfg.ema)(generator) if cfg.get("ema") else None,
        num_fixed=num_fixed)
