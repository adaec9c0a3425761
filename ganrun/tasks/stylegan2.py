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
corrected for the extra steps by ``ganrun.training.optim.lazy_regularized_adam``. The generator's latents
go through style mixing (``style_mixing_prob``: a second latent's w from a random layer on).
The EMA generator is updated once per batch after D's main phase, as NVIDIA updates it after
all phases of a batch (D's phases leave G unchanged). D sees every image through ``augment``
(DiffAugment) in all phases; R1 differentiates with respect to the un-augmented reals.
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
from hydra.utils import get_object
from torch import nn

from ganrun.training.regularizers import fp32_twice_differentiable
from ganrun.errors import UserError
from ganrun.inference.latents import seeded_latents
from ganrun.inference.model import SampleOptions, Sampler, eval_mode, key
from ganrun.nets.stylegan2 import NOISE_MODES
from ganrun.tasks.base import Phase, Step, graph_safe
from ganrun.tasks.generation import Generation
from ganrun.tasks.options import build_net, check_model, conditioning, takes


class StyleGAN2(Generation):
    iteration_phase = "G"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss, latent_dim: int,
                 r1_gamma: float = 10.0, d_reg_interval: int = 16, pl_weight: float = 2.0,
                 g_reg_interval: int = 4, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 style_mixing_prob: float = 0.9, augment=None, ema=None, num_fixed: int = 64,
                 data_shape: dict | None = None):
        super().__init__(generator, discriminator, loss, latent_dim, augment=augment, ema=ema,
                         num_fixed=num_fixed, data_shape=data_shape)
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

    def compile_units(self):
        # The phases call the generator's two parts, never its forward.
        return {"G.mapping": self.generator.mapping, "G.synthesis": self.generator.synthesis,
                "D": self.discriminator}

    def phase_loss(self, phase, batch, step: Step):
        real, labels = batch
        labels = labels if self.num_classes else None
        if phase.name == "G":
            return self.generator_loss(real, labels)
        if phase.name == "G_reg":
            return self.path_length_loss(self.sample_z(len(real)), labels, phase.interval)
        if phase.name == "D":
            return self.discriminator_loss(real, labels, 0)
        return self.r1_loss(real, labels, phase.interval)

    def after_update(self, phase, batch, step: Step):
        if phase.name == "D" and self.ema is not None:
            images = len(batch[0]) * step.world_size
            # NVIDIA's ramp-up counts the images shown before this batch.
            self.ema.update(self.generator, (step.batch - 1) * images, images)

    # The generator's forward with style mixing.

    def mapped(self, z, labels) -> torch.Tensor:
        """ws of ``z``; with probability ``style_mixing_prob`` those from a random layer
        (1 .. num_ws - 1) on are replaced by the ws of a second latent (which, like NVIDIA's,
        leaves ``w_avg`` alone). Decided on the device: the second latent's ws are always
        computed (a few small layers) and chosen per layer with a mask, so the host never
        waits for the draw."""
        mapping = self.generator.mapping
        ws = graph_safe(mapping(z, labels))  # read after the second latent's mapping
        if self.style_mixing_prob > 0:
            cutoff = torch.randint(1, ws.shape[1], (), device=ws.device)
            mix = torch.rand((), device=ws.device) < self.style_mixing_prob
            second = mapping(torch.randn_like(z), labels, update_w_avg=False)
            layers = torch.arange(ws.shape[1], device=ws.device)
            ws = torch.where((mix & (layers >= cutoff)).view(1, -1, 1), second, ws)
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
            fake = graph_safe(fake)  # read after D's call on the reals
        real_out = self.discriminate(self.augment(real), labels)[0]
        fake_out = self.discriminate(self.augment(fake), labels)[0]
        loss = self.loss.d_loss(real_out, fake_out)
        real_out, fake_out = real_out.detach(), fake_out.detach()
        return loss, {"loss/d": loss.detach(), "d/real": real_out.mean(),
                      "d/fake": fake_out.mean(),
                      "d/acc_real": (real_out > self.loss.threshold).float().mean(),
                      "d/acc_fake": (fake_out <= self.loss.threshold).float().mean()}

    def path_length_loss(self, z, labels, interval: int):
        """``interval * pl_weight * mean((|J^T y| - pl_mean)^2)``; updates ``pl_mean``. In
        fp32 whatever the run's precision: the penalty differentiates the generator's output."""
        n = max(1, len(z) // self.pl_batch_shrink)
        with fp32_twice_differentiable(z.device.type):
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
        """``interval * r1_gamma / 2 * mean(|grad_x D(x)|^2)`` on the real images, in fp32."""
        real = real.detach().float().requires_grad_(True)
        with fp32_twice_differentiable(real.device.type):
            out = self.discriminate(self.augment(real), labels)[0]
            (grads,) = torch.autograd.grad(out.sum(), real, create_graph=True)
        penalty = grads.square().sum([1, 2, 3])
        loss = (out * 0 + penalty * (self.r1_gamma / 2)).mean() * interval
        return loss, {"reg/r1_penalty": penalty.detach().mean()}

    # After training: the training grid uses the EMA generator, truncation 1 and the constant
    # noise (NVIDIA's snapshot grids); metrics use random noise (NVIDIA's metrics).

    def inference(self) -> "StyleSampler":
        return StyleSampler({"G": self.sampling_generator}, self.data_shape, self.latent_dim,
                            self.num_classes)

    def sample_grid(self, nrow: int) -> torch.Tensor:
        sampler = self.inference()
        z, labels = self.fixed_inputs(nrow)
        return sampler.generate(z, labels, sampler.options(noise_mode="const"))


@dataclass
class StyleOptions(SampleOptions):
    """``ganrun sample``'s keys for a style-based generator."""

    truncation: Optional[float] = key(None, "the truncation trick: each w pulled towards the "
                                            "tracked mean w_avg (1: none, 0.7: typical)")
    truncation_cutoff: Optional[int] = key(None, "truncate only the first N style layers")
    noise_mode: Optional[str] = key(None, "const (the default: reproducible), random or none")
    mix: bool = key(False, "mixing.png, a style-mixing grid: num row sources (seed) give the "
                           "coarse styles, the column sources (seed + 1) the layers mix_layers")
    mix_layers: Optional[str] = key(None, "style layers taken from the column sources: a range "
                                          "4-7 or a list 0,1,2 (0 = coarsest); null: the finer "
                                          "half")


class StyleSampler(Sampler):
    """A StyleGAN2 generator: sampling through W, as NVIDIA's ``generate.py`` and
    ``style_mixing.py`` do: the truncation trick around ``w_avg``, constant noise by default,
    style-mixing grids and interpolations in W. Everything runs in eval mode, so ``w_avg`` is
    never updated by sampling."""

    kind = "a style-based image generator (StyleGAN2)"
    Options = StyleOptions

    def check(self, options) -> None:
        super().check(options)
        if options.noise_mode not in (None, *NOISE_MODES):
            raise UserError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got "
                            f"'{options.noise_mode}'.")
        if options.truncation is None and options.truncation_cutoff is not None:
            raise UserError(f"truncation_cutoff={options.truncation_cutoff} needs a truncation "
                            "to apply, e.g. truncation=0.7.")

    def latents(self, num, seed, options=None):
        return seeded_latents(num, self.latent_dim, seed)  # truncation is psi, in W

    def ws(self, z, labels, options) -> torch.Tensor:
        psi = 1.0 if options is None or options.truncation is None else options.truncation
        cutoff = None if options is None else options.truncation_cutoff
        with eval_mode(self.generator):
            labels = None if labels is None else labels.to(self.device)
            # A copy: read after later network calls (a compiled, unaveraged G in training).
            return graph_safe(self.generator.mapping(z.to(self.device), labels, psi, cutoff))

    def synthesize(self, ws, options=None) -> torch.Tensor:
        noise_mode = getattr(options, "noise_mode", None) or "const"
        with eval_mode(self.generator):
            return self.generator.synthesis(ws.to(self.device), noise_mode).float()

    def generate(self, z, conditions=None, options=None):
        return self.synthesize(self.ws(z, conditions, options), options)

    def metric_samples(self):
        random_noise = self.options(noise_mode="random")
        return lambda n: self.generate(torch.randn(n, self.latent_dim, device=self.device),
                                       self.conditions(n), random_noise)

    def interpolation(self, rows, steps, seed, spherical=True, options=None):
        """Straight lines in W between the ws of two random latents per row."""
        ends = seeded_latents(2 * rows, self.latent_dim, seed).view(rows, 2, -1)
        labels = self.conditions(rows, options)
        start, end = self.ws(ends[:, 0], labels, options), self.ws(ends[:, 1], labels, options)
        t = torch.linspace(0, 1, steps, device=start.device).view(1, steps, 1, 1)
        path = (start.unsqueeze(1) + (end - start).unsqueeze(1) * t).reshape(-1, *start.shape[1:])
        return torch.cat([self.synthesize(path[i:i + 256], options).cpu()
                          for i in range(0, len(path), 256)])

    def special_grid(self, num, nrow, seed, options):
        """With mix=true: mixing.png. The top row holds the column sources (seed + 1) after an
        empty (black) corner; then each row source (seed) followed by its mixes: the row's ws
        with the layers ``mix_layers`` (default: the finer half) taken from the column's."""
        if not options.mix:
            return None
        cols = nrow or num
        layers = parse_layers(options.mix_layers, self.generator.num_ws)
        row_ws = self.ws(seeded_latents(num, self.latent_dim, seed),
                         self.conditions(num, options), options)
        col_ws = self.ws(seeded_latents(cols, self.latent_dim, seed + 1),
                         self.conditions(cols, options), options)
        rows, top = self.synthesize(row_ws, options).cpu(), self.synthesize(col_ws, options).cpu()
        mixed = self.synthesize(mixing_ws(row_ws, col_ws, layers), options).cpu()
        mixed = mixed.view(num, cols, *top.shape[1:])
        corner = torch.full_like(top[:1], -1.0)
        grid = torch.cat([torch.cat([corner, top])] +
                         [torch.cat([rows[i:i + 1], mixed[i]]) for i in range(num)])
        return "mixing.png", grid, cols + 1


def parse_layers(spec: str | None, num_ws: int) -> list[int]:
    """``"4-7"``, ``"0,1,5"`` or null (the fine half: ``num_ws // 2`` on) -> layer indices."""
    if spec is None or str(spec).strip() == "":
        return list(range(num_ws // 2, num_ws))
    layers: list[int] = []
    try:
        for part in str(spec).split(","):
            low, _, high = part.strip().partition("-")
            layers += range(int(low), int(high or low) + 1)
    except ValueError:
        layers = []
    if not layers or any(not 0 <= i < num_ws for i in layers):
        raise UserError(f"mix_layers='{spec}' is not a list of layers of this generator, which has "
                        f"{num_ws} style layers (0 = coarsest, {num_ws - 1} = finest). Use e.g. "
                        f"mix_layers={num_ws // 2}-{num_ws - 1} (a range) or mix_layers=0,1,2.")
    return sorted(set(layers))


def mixing_ws(row_ws: torch.Tensor, col_ws: torch.Tensor, layers: list[int]) -> torch.Tensor:
    """(rows * cols, num_ws, w_dim), row-major: row i's ws with ``layers`` from column j."""
    rows, cols = len(row_ws), len(col_ws)
    mixed = row_ws.unsqueeze(1).repeat(1, cols, 1, 1)
    mixed[:, :, layers] = col_ws.unsqueeze(0).expand(rows, -1, -1, -1)[:, :, layers]
    return mixed.reshape(rows * cols, *row_ws.shape[1:])


def style_model(model) -> bool:
    """A style-based generator (mapping + synthesis) and an image discriminator."""
    return getattr(get_object(model.generator._target_), "style_based", False) and \
        takes(model.discriminator._target_, "channels", "image_size")


def build(cfg, shape: dict, r1_gamma: float = 10.0, d_reg_interval: int = 16,
          pl_weight: float = 2.0, g_reg_interval: int = 4, pl_batch_shrink: int = 2,
          pl_decay: float = 0.01, style_mixing_prob: float = 0.9,
          num_fixed: int = 64) -> StyleGAN2:
    """The StyleGAN2 task: ``model.generator`` / ``model.discriminator`` (model=stylegan2),
    class-conditional with ``conditioning=projection`` (NVIDIA's label-mapping projection D)."""
    from hydra.utils import instantiate

    check_model(cfg, "stylegan2", style_model,
                "a style-based generator (a mapping and a synthesis network)")
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
    generator = build_net(cfg.model.generator, latent_dim=cfg.model.latent_dim, **size,
                          **g_classes)
    return StyleGAN2(
        generator=generator,
        discriminator=build_net(cfg.model.discriminator, **size, **g_classes),
        loss=instantiate(cfg.loss), latent_dim=cfg.model.latent_dim,
        r1_gamma=r1_gamma, d_reg_interval=d_reg_interval, pl_weight=pl_weight,
        g_reg_interval=g_reg_interval, pl_batch_shrink=pl_batch_shrink, pl_decay=pl_decay,
        style_mixing_prob=style_mixing_prob,
        augment=instantiate(cfg.augment) if cfg.get("augment") else None,
        ema=instantiate(cfg.ema)(generator) if cfg.get("ema") else None,
        num_fixed=num_fixed, data_shape=shape)
