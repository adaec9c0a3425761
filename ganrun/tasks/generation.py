"""Generation: one generator fed by latents (and labels) against one discriminator.

Each batch is one D update on that batch's real images; every ``n_critic``-th D update after
``d_warmup_steps`` warm-up updates is followed by one G update on the same batch, which
completes an iteration. D's penalties (``regularizers``) ride in D's update, lazily: one with
interval k is evaluated on every k-th D update and multiplied by k.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.training.ema import GeneratorEMA
from ganrun.errors import UserError
from ganrun.inference.model import Sampler
from ganrun.training.losses import GANLoss
from ganrun.nets.conditioning import split_output
from ganrun.training.regularizers import Regularizer, after_d_step, d_penalties
from ganrun.tasks.base import Phase, Step, Task, graph_safe
from ganrun.tasks.options import build_net, check_model, conditioning, regularizers, takes


class Generation(Task):
    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: GANLoss,
                 latent_dim: int, regularizers: dict[str, Regularizer] | None = None,
                 n_critic: int = 1, d_warmup_steps: int = 0, augment=None,
                 ema: GeneratorEMA | None = None, num_fixed: int = 64,
                 data_shape: dict | None = None):
        super().__init__()
        self.nets = nn.ModuleDict({"G": generator, "D": discriminator})
        self.ema = ema  # a submodule: its weights are saved and restored with the checkpoint
        self.loss, self.latent_dim = loss, latent_dim
        self.regularizers = regularizers or {}
        self.n_critic, self.d_warmup_steps = n_critic, d_warmup_steps
        # D sees every image through this (DiffAugment), in both players' updates.
        self.augment = augment or nn.Identity()
        self.data_shape = dict(data_shape or {})
        # A buffer, so the sample grid shows the same latents before and after a resume.
        self.register_buffer("fixed_z", torch.randn(num_fixed, latent_dim))

    @property
    def generator(self) -> nn.Module:
        return self.nets["G"]

    @property
    def discriminator(self) -> nn.Module:
        return self.nets["D"]

    def players(self):
        return {"D": ["D"], "G": ["G"]}

    def phases(self):
        return [Phase("D", "D"),
                Phase("G", "G", interval=self.n_critic,
                      start=self.d_warmup_steps + self.n_critic)]

    def phase_loss(self, phase, batch, step: Step):
        real, labels = batch
        if phase.name == "D":
            return self.discriminator_loss(real, labels, step.updates("D"))
        return self.generator_loss(real, labels)

    def after_update(self, phase, batch, step: Step):
        if phase.name == "D":
            after_d_step(self.regularizers, self.discriminator)
        elif self.ema is not None:
            images = len(batch[0]) * step.world_size
            self.ema.update(self.generator, step.iteration * images, images)

    def discriminator_loss(self, real, labels, d_updates: int):
        with torch.no_grad():
            # Read after D's call on the reals (and by the penalties).
            fake = graph_safe(self.generator(self.sample_z(len(real)), labels))
        real, fake = self.augment(real), self.augment(fake)
        real_out, real_classes = self.discriminate(real, labels)
        fake_out, fake_classes = self.discriminate(fake, labels)
        loss = self.loss.d_loss(real_out, fake_out) + self.class_loss(real_classes, labels) + \
            self.class_loss(fake_classes, labels)
        penalties = d_penalties(self.regularizers, self.discriminator, real, fake, labels,
                                d_updates)
        real_out, fake_out = real_out.detach(), fake_out.detach()
        # Accuracies near 1 with a falling G loss are the usual sign of D overpowering G.
        stats = {"loss/d": loss.detach(), "d/real": real_out.mean(), "d/fake": fake_out.mean(),
                 "d/acc_real": (real_out > self.loss.threshold).float().mean(),
                 "d/acc_fake": (fake_out <= self.loss.threshold).float().mean(),
                 **{f"reg/{name}": value.detach() for name, value in penalties.items()}}
        return loss + sum(penalties.values()), stats

    def generator_loss(self, real, labels):
        fake = self.generator(self.sample_z(len(real)), labels)
        fake_out, fake_classes = self.discriminate(self.augment(fake), labels)
        real_out = None
        if self.loss.needs_real_in_g_step:  # relativistic losses: D's current view of reals
            with torch.no_grad():
                real_out = self.discriminate(self.augment(real), labels)[0]
        loss = self.loss.g_loss(fake_out, real_out) + self.class_loss(fake_classes, labels)
        return loss, {"loss/g": loss.detach()}

    def discriminate(self, images, labels) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's real/fake logits in fp32, and its class logits when it has an auxiliary
        classifier (ACGAN), else None."""
        out, classes = split_output(self.discriminator(images, labels))
        return out.float(), None if classes is None else classes.float()

    @staticmethod
    def class_loss(class_logits: torch.Tensor | None, labels) -> torch.Tensor | float:
        # ACGAN's classification term, added to both players' losses.
        return 0.0 if class_logits is None else F.cross_entropy(class_logits, labels)

    # After training: the sample grid, and the sampler of metrics, `ganrun sample`, exports.

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.fixed_z.device)

    @property
    def num_classes(self) -> int:
        """Classes the generator is conditioned on; 0 for an unconditional one."""
        return getattr(self.generator, "num_classes", 0) or 0

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator samples and metrics come from: the EMA copy when there is one."""
        return self.ema.generator if self.ema is not None else self.generator

    def fixed_inputs(self, per_class: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The sample grid's latents and labels: ``fixed_z``, or for a conditional generator
        one row of ``per_class`` images per class, the same latents in every row."""
        if not self.num_classes:
            return self.fixed_z, None
        z = self.fixed_z[:per_class].repeat(self.num_classes, 1)
        labels = torch.arange(self.num_classes, device=self.fixed_z.device)
        return z, labels.repeat_interleave(len(z) // self.num_classes)

    def inference(self) -> Sampler:
        return Sampler({"G": self.sampling_generator}, self.data_shape, self.latent_dim,
                       self.num_classes)

    def sample_grid(self, nrow: int) -> torch.Tensor:
        return self.inference().generate(*self.fixed_inputs(nrow))


def latent_model(model) -> bool:
    """A generator of images from latents and a discriminator of images."""
    return takes(model.generator._target_, "latent_dim", "channels", "image_size") and \
        takes(model.discriminator._target_, "channels", "image_size")


def build(cfg, shape: dict) -> Generation:
    """The generation task of a composed config: networks from ``model`` (class-conditional
    with a ``conditioning`` option), ``loss``, ``regularizers``, ``augment``, ``ema``."""
    from hydra.utils import instantiate

    check_model(cfg, "generation", latent_model,
                "a generator of images from latents (latent_dim, channels, image_size)")
    if "channels_a" in shape:
        raise UserError("task=generation trains on one set of images, but this data set has two "
                        "domains (A and B). Use task=cyclegan (unpaired translation) or "
                        "task=pix2pix (paired), or a data set of one domain (e.g. "
                        "dataset=fashion_mnist).")
    size = {"channels": shape["channels"], "image_size": shape["image_size"]}
    g_classes, d_classes = conditioning(cfg, shape)
    generator = build_net(cfg.model.generator, latent_dim=cfg.model.latent_dim, **size,
                          **g_classes)
    return Generation(
        generator=generator,
        discriminator=build_net(cfg.model.discriminator, **size, **d_classes),
        loss=instantiate(cfg.loss),
        latent_dim=cfg.model.latent_dim,
        regularizers=regularizers(cfg),
        n_critic=cfg.trainer.n_critic,
        d_warmup_steps=cfg.trainer.get("d_warmup_steps", 0),
        augment=instantiate(cfg.augment) if cfg.get("augment") else None,
        ema=instantiate(cfg.ema)(generator) if cfg.get("ema") else None,
        data_shape=shape,
    )
