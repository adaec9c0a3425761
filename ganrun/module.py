"""The GAN LightningModule: alternating discriminator/generator updates, manual optimization.

One *iteration* is ``n_critic`` discriminator updates, each on its own real batch, followed by
one generator update; ``d_warmup_steps`` discriminator-only updates come before the first.
``iteration`` (not Lightning's ``global_step``, which counts every optimizer step) is the run
length, the checkpoint cadence and the x-axis of every log.
"""

from typing import Any, Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from ganrun.checkpoints import SECTION, RunState, run_state
from ganrun.divergence import DivergencePolicy, Stop
from ganrun.ema import GeneratorEMA
from ganrun.generate import run_generator
from ganrun.loop_state import canonical_loop_state
from ganrun.losses import GANLoss
from ganrun.nets.conditioning import split_output
from ganrun.regularizers import Regularizer
from ganrun.rng import rng_states, set_rng_states

OptimizerFactory = Callable[[Any], torch.optim.Optimizer]


class GAN(pl.LightningModule):
    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: GANLoss,
                 g_optimizer: OptimizerFactory, d_optimizer: OptimizerFactory, latent_dim: int,
                 divergence: DivergencePolicy | None = None,
                 regularizers: dict[str, Regularizer] | None = None,
                 n_critic: int = 1, d_warmup_steps: int = 0,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 max_iterations: int | None = None, num_fixed: int = 64,
                 config: dict | None = None, choices: dict | None = None,
                 data_shape: dict | None = None, ema: GeneratorEMA | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator, self.loss = generator, discriminator, loss
        self.ema = ema  # a submodule: its weights are saved and restored with the checkpoint
        self.divergence = divergence or Stop()
        self.regularizers = regularizers or {}
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.latent_dim, self.n_critic, self.max_iterations = latent_dim, n_critic, max_iterations
        self.d_warmup_steps = d_warmup_steps
        # D sees every image through this (DiffAugment), in both players' updates.
        self.augment = augment or nn.Identity()
        # The resolved run config and its group choices travel in every checkpoint.
        self.config, self.choices, self.data_shape = config, choices or {}, data_shape
        # A buffer, so the sample grid shows the same latents before and after a resume.
        self.register_buffer("fixed_z", torch.randn(num_fixed, latent_dim))
        self.iteration = 0
        self.d_updates = 0
        self.stats: dict[str, torch.Tensor] = {}
        # Batches drawn in the current epoch, so a resumed run can continue the data order.
        self.data_position = {"epoch": 0, "batches": 0}
        self._restored_rng: dict | None = None
        self._first_batch = True

    def configure_optimizers(self):
        return [self.d_optimizer(self.discriminator.parameters()),
                self.g_optimizer(self.generator.parameters())]

    def on_train_start(self):
        self._first_batch = True

    def on_train_batch_start(self, batch, batch_idx):
        # Restored here rather than at load time: Lightning draws random numbers between
        # loading a checkpoint and the first batch, the uninterrupted run did not.
        if self._restored_rng is not None:
            set_rng_states(self._restored_rng)
            self._restored_rng = None
        if self._first_batch and self.trainer.world_size > 1:
            # Every rank was seeded alike; without this they would all draw the same latents.
            seed = (self.config or {}).get("seed") or 0
            torch.manual_seed(seed + 1_000_003 * self.iteration + self.global_rank)
        self._first_batch = False

    def training_step(self, batch, batch_idx):
        self._count_batch()
        real, labels = batch
        opt_d, opt_g = self.optimizers()
        d_stats = self.discriminator_step(opt_d, real, labels)
        self.d_updates += 1
        # d_updates is checkpointed, so a resume continues warm-up and n_critic cycles exactly.
        alternating = self.d_updates - self.d_warmup_steps
        if alternating <= 0 or alternating % self.n_critic:
            return
        g_stats = self.generator_step(opt_g, real, labels)
        self.iteration += 1
        if self.ema is not None:
            batch = len(real) * self.trainer.world_size
            self.ema.update(self.generator, self.iteration * batch, batch)
        self.stats = {**d_stats, **g_stats, **self.divergence.stats()}
        if self.max_iterations and self.iteration >= self.max_iterations:
            self.trainer.should_stop = True

    def discriminator_step(self, opt, real, labels) -> dict[str, torch.Tensor]:
        self.toggle_optimizer(opt)
        with torch.no_grad():
            fake = self.generator(self.sample_z(len(real)), labels)
        real, fake = self.augment(real), self.augment(fake)
        real_out, real_classes = self.discriminate(real, labels)
        fake_out, fake_classes = self.discriminate(fake, labels)
        loss = self.loss.d_loss(real_out, fake_out) + self.class_loss(real_classes, labels) + \
            self.class_loss(fake_classes, labels)
        penalties = self.d_regularization(real, fake, labels)
        grad_norm = self.update(opt, loss + sum(penalties.values()), self.discriminator, "loss/d")
        self.untoggle_optimizer(opt)
        for regularizer in self.regularizers.values():
            regularizer.after_step(self.discriminator)
        real_out, fake_out = real_out.detach(), fake_out.detach()
        # Accuracies near 1 with a falling G loss are the usual sign of D overpowering G.
        return {"loss/d": loss.detach(), "d/real": real_out.mean(), "d/fake": fake_out.mean(),
                "d/acc_real": (real_out > self.loss.threshold).float().mean(),
                "d/acc_fake": (fake_out <= self.loss.threshold).float().mean(),
                "grad_norm/d": grad_norm,
                **{f"reg/{name}": value.detach() for name, value in penalties.items()}}

    def d_regularization(self, real, fake, labels) -> dict[str, torch.Tensor]:
        """D's regularization phase: the penalties due at this D update (a penalty with
        interval k is due every k-th update), each multiplied by its interval."""
        due = {name: reg for name, reg in self.regularizers.items()
               if self.d_updates % reg.interval == 0}
        penalties = {name: reg.penalty(self.discriminator, real, fake, labels)
                     for name, reg in due.items()}
        return {name: due[name].interval * value for name, value in penalties.items()
                if value is not None}

    def generator_step(self, opt, real, labels) -> dict[str, torch.Tensor]:
        self.toggle_optimizer(opt)
        fake = self.generator(self.sample_z(len(real)), labels)
        fake_out, fake_classes = self.discriminate(self.augment(fake), labels)
        real_out = None
        if self.loss.needs_real_in_g_step:  # relativistic losses: D's current view of reals
            with torch.no_grad():
                real_out = self.discriminate(self.augment(real), labels)[0]
        loss = self.loss.g_loss(fake_out, real_out) + self.class_loss(fake_classes, labels)
        grad_norm = self.update(opt, loss, self.generator, "loss/g")
        self.untoggle_optimizer(opt)
        return {"loss/g": loss.detach(), "grad_norm/g": grad_norm}

    def discriminate(self, images, labels) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's real/fake logits in fp32, and its class logits when it has an auxiliary
        classifier (ACGAN), else None."""
        out, classes = split_output(self.discriminator(images, labels))
        return out.float(), None if classes is None else classes.float()

    @staticmethod
    def class_loss(class_logits: torch.Tensor | None, labels) -> torch.Tensor | float:
        # ACGAN's classification term, added to both players' losses.
        return 0.0 if class_logits is None else F.cross_entropy(class_logits, labels)

    def update(self, opt, loss: torch.Tensor, net: nn.Module, tag: str) -> torch.Tensor:
        """Backward and step, unless the loss or the gradient is not finite. Returns the
        gradient norm (unscaled under fp16)."""
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).detach()
        if scaler is not None:
            # Inf gradients are routine under loss scaling: the scaler skips those steps.
            grad_norm, checked = grad_norm / scaler.get_scale(), loss.detach()
        else:
            checked = torch.stack([loss.detach().float(), grad_norm.float()])
        finite = bool(torch.isfinite(checked).all())
        if self.trainer.world_size > 1:  # every rank takes the same branch
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if finite:
            opt.step()
        else:
            what = f"{tag} is {loss.item()}" if not torch.isfinite(loss) else \
                f"the gradient of {tag} is not finite"
            self.divergence.handle(self, what)
        return grad_norm

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.divergence.after_batch(self)

    def _count_batch(self) -> None:
        if self.trainer.current_epoch != self.data_position["epoch"]:
            self.data_position = {"epoch": self.trainer.current_epoch, "batches": 0}
        self.data_position["batches"] += 1

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    @property
    def num_classes(self) -> int:
        """Classes the generator is conditioned on; 0 for an unconditional one."""
        return getattr(self.generator, "num_classes", 0) or 0

    def fixed_inputs(self, per_class: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The sample grid's latents and labels: ``fixed_z``, or for a conditional generator
        one row of ``per_class`` images per class, the same latents in every row."""
        if not self.num_classes:
            return self.fixed_z, None
        z = self.fixed_z[:per_class].repeat(self.num_classes, 1)
        labels = torch.arange(self.num_classes, device=self.device)
        return z, labels.repeat_interleave(len(z) // self.num_classes)

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator samples and metrics come from: the EMA copy when there is one."""
        return self.ema.generator if self.ema is not None else self.generator

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from latents, by the EMA generator when there is one, in eval mode
        so that a sample never depends on its batch. A conditional generator without labels
        makes a balanced mix of classes (for metrics)."""
        return run_generator(self.sampling_generator, z, labels, self.num_classes)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[SECTION] = RunState(
            config=self.config, data_shape=self.data_shape, iteration=self.iteration,
            d_updates=self.d_updates, choices=self.choices,
            data_position=dict(self.data_position), rng=rng_states()).to_dict()
        canonical_loop_state(checkpoint.get("loops", {}), **self.data_position,
                             batches_per_epoch=self.trainer.num_training_batches)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = run_state(checkpoint)
        self.iteration, self.d_updates = state.iteration, state.d_updates
        self.data_position = dict(state.data_position)
        self._restored_rng = state.rng
