"""Text-to-image: a generator of images from latents and a caption's sentence vector, against a
matching-aware discriminator (Reed et al. 2016, GAN-INT-CLS; the deep text fusion and the
matching-aware gradient penalty of DF-GAN, Tao et al. 2022, as options).

Each batch holds images with one of their captions (``ganrun.data.captions``). The text
encoder needs no download: its vocabulary is the training captions' words, and for the first
``encoder_batches`` batches it is trained with a small image encoder, contrastively (each image
against the batch's captions and each caption against its images, InfoNCE), as DF-GAN's text
encoder is pretrained with DAMSM; then it is frozen. After that, each batch is:

- ``D``: the real image with its caption is real; the generated image with that caption, and,
  with ``matching_aware``, the real image with another image's caption are fake (their terms
  averaged, as in GAN-INT-CLS); with ``ma_gp`` > 0, DF-GAN's penalty
  ``ma_gp * mean(|grad D(x, s)|^ma_gp_power)`` on real (image, caption) pairs, the gradient
  taken with respect to both;
- ``G``: fool D with each caption; with ``interpolation`` (GAN-INT), also with the sentence
  vectors halfway between two captions of the batch.

Any ``loss=`` serves (its D and G sides), with ``ema=`` for the sampling generator.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.training.regularizers import fp32_twice_differentiable
from ganrun.data.captions import encode, grid_with_captions
from ganrun.errors import UserError
from ganrun.inference.latents import seeded_latents
from ganrun.inference.model import SampleOptions, Sampler, eval_mode, key
from ganrun.tasks.base import Phase, Step, Task, graph_safe
from ganrun.tasks.options import build_net, check_model, refuse, takes

log = logging.getLogger("ganrun")


class Text2Image(Task):
    iteration_phase = "G"

    def __init__(self, G: nn.Module, D: nn.Module, text: nn.Module, image: nn.Module, loss,
                 latent_dim: int, data_shape: dict, encoder_batches: int = 500,
                 encoder_lr: float = 1e-3, temperature: float = 0.1,
                 matching_aware: bool = True, interpolation: bool = True,
                 ma_gp: float = 0.0, ma_gp_power: float = 6.0, ema=None, num_fixed: int = 8):
        super().__init__()
        if encoder_batches < 1:
            raise UserError(f"task.encoder_batches must be at least 1 (the text encoder is "
                            f"trained first), got {encoder_batches}.")
        self.nets = nn.ModuleDict({"G": G, "D": D, "text": text, "image": image})
        self.loss, self.latent_dim, self.data_shape = loss, latent_dim, dict(data_shape)
        self.encoder_batches, self.encoder_lr = encoder_batches, encoder_lr
        self.temperature, self.matching_aware = temperature, matching_aware
        self.interpolation, self.ma_gp, self.ma_gp_power = interpolation, ma_gp, ma_gp_power
        self.ema = ema
        self.register_buffer("fixed_z", torch.randn(num_fixed, latent_dim))
        # The sample grid's captions: the first test captions, set by prepare().
        self.register_buffer("fixed_tokens", torch.zeros(num_fixed, data_shape["max_length"],
                                                         dtype=torch.long))
        self.register_buffer("fixed_lengths", torch.ones(num_fixed, dtype=torch.long))

    def players(self):
        return {"E": ["text", "image"], "D": ["D"], "G": ["G"]}

    def own_optimizer(self, player):
        if player == "E":  # the encoders' contrastive training: the usual Adam of such models
            return functools.partial(torch.optim.Adam, lr=self.encoder_lr, betas=(0.9, 0.999),
                                     fused=True)
        return None

    warmup_name = "Text encoder (task.encoder_batches)"

    def phases(self):
        after = self.encoder_batches + 1
        return [Phase("E", "E", stop=self.encoder_batches), Phase("D", "D", start=after),
                Phase("G", "G", start=after)]

    def prepare(self, datamodule) -> None:
        test = datamodule.captions("test")
        n = min(len(self.fixed_z), len(test))
        self.fixed_tokens[:n].copy_(test.tokens[:n])
        self.fixed_lengths[:n].copy_(test.lengths[:n])

    def embed(self, batch) -> torch.Tensor:
        return self.nets["text"](batch["tokens"], batch["length"])

    def phase_loss(self, phase, batch, step: Step):
        if phase.name == "E":
            return self.encoder_loss(batch)
        with torch.no_grad():  # the encoder is frozen once the GAN trains
            text = graph_safe(self.embed(batch).float())  # read after G's and D's calls
        if phase.name == "D":
            return self.discriminator_loss(batch["image"], text)
        return self.generator_loss(batch["image"], text)

    def encoder_loss(self, batch):
        images = F.normalize(self.nets["image"](batch["image"]).float(), dim=1)
        texts = F.normalize(self.embed(batch).float(), dim=1)
        logits = images @ texts.T / self.temperature
        target = torch.arange(len(logits), device=logits.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        accuracy = (logits.argmax(1) == target).float().mean()
        return loss, {"text/contrastive_loss": loss.detach(), "text/match_accuracy": accuracy}

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.fixed_z.device)

    def discriminator_loss(self, real, text):
        with torch.no_grad():
            fake = graph_safe(self.nets["G"](self.sample_z(len(real)), text))  # after D(real)
        D = self.nets["D"]
        real_out, fake_out = D(real, text).float(), D(fake, text).float()
        stats = {"d/real": real_out.detach().mean(), "d/fake": fake_out.detach().mean()}
        if self.matching_aware:  # the real image with another's caption is fake too
            wrong_out = D(real, text.roll(1, 0)).float()
            stats["d/wrong"] = wrong_out.detach().mean()
            fake_out = torch.cat([fake_out, wrong_out])
        loss = self.loss.d_loss(real_out, fake_out)
        stats["loss/d"] = loss.detach()
        if self.ma_gp:
            penalty = self.matching_aware_penalty(real, text)
            stats["reg/ma_gp"] = penalty.detach()
            loss = loss + penalty
        return loss, stats

    def matching_aware_penalty(self, real, text) -> torch.Tensor:
        """DF-GAN's MA-GP on real pairs, in fp32: the gradient with respect to the image and
        the sentence vector together."""
        real = real.detach().float().requires_grad_(True)
        text = text.detach().float().requires_grad_(True)
        with fp32_twice_differentiable(real.device.type):
            out = self.nets["D"](real, text)
            grads = torch.autograd.grad(out.sum(), (real, text), create_graph=True)
        norm = torch.sqrt(sum(g.flatten(1).square().sum(1) for g in grads))
        return self.ma_gp * norm.pow(self.ma_gp_power).mean()

    def generator_loss(self, real, text):
        D = self.nets["D"]
        fake = self.nets["G"](self.sample_z(len(real)), text)
        real_out = None
        if self.loss.needs_real_in_g_step:  # relativistic losses: D's view of the reals
            with torch.no_grad():
                real_out = D(real, text).float()
        loss = self.loss.g_loss(D(fake, text).float(), real_out)
        stats = {"loss/g": loss.detach()}
        if self.interpolation:  # GAN-INT: captions halfway between two of the batch's
            between = 0.5 * text + 0.5 * text.roll(1, 0)
            mixed = self.loss.g_loss(D(self.nets["G"](self.sample_z(len(real)), between),
                                       between).float(), real_out)
            stats["loss/g_interpolated"] = mixed.detach()
            loss = loss + mixed
        return loss, stats

    def after_update(self, phase, batch, step: Step):
        if phase.name == "G" and self.ema is not None:
            images = len(batch["image"]) * step.world_size
            self.ema.update(self.nets["G"], step.iteration * images, images)

    # After training.

    @property
    def sampling_generator(self) -> nn.Module:
        return self.ema.generator if self.ema is not None else self.nets["G"]

    def inference(self) -> "TextSampler":
        vocabulary = self.data_shape["vocabulary"]
        captions = [decode(tokens, length, vocabulary) for tokens, length in
                    zip(self.fixed_tokens.tolist(), self.fixed_lengths.tolist())]
        return TextSampler({"G": self.sampling_generator, "text": self.nets["text"],
                            "image": self.nets["image"]}, self.data_shape, self.latent_dim,
                           captions=captions)

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """A row per fixed test caption, written before its ``nrow`` images (one latent per
        column, the same in every row)."""
        sampler = self.inference()
        rows = sampler.settings["captions"]
        z = self.fixed_z[:nrow].repeat(len(rows), 1)
        captions = [c for c in rows for _ in range(nrow)]
        images = sampler.generate(z, captions)
        return grid_with_captions(images, captions, nrow)[None]


def decode(tokens: list[int], length: int, vocabulary: list[str]) -> str:
    return " ".join(vocabulary[t] for t in tokens[:length])


@dataclass
class TextOptions(SampleOptions):
    text: Optional[str] = key(None, 'a caption: every sample shows it (e.g. "a dark ankle '
                                    'boot")')
    texts: Optional[str] = key(None, "a text file of captions, one a line: one image per "
                                     "line, named after it", page=False)
    text_b: Optional[str] = key(None, "with interpolate=true: each row walks from text to "
                                      "text_b")


class TextSampler(Sampler):
    """Images from latents and captions: ``text=``, ``texts=FILE`` (one a line), or the
    model's own test captions in turn. Words the model never saw are named in a warning and
    read as unknown."""

    kind = "a text-to-image generator (caption -> image)"
    pipeline_tag = "text-to-image"
    Options = TextOptions
    conditions_file, conditions_column = "captions.csv", "text"

    def __init__(self, nets: dict, data_shape: dict, latent_dim: int, num_classes: int = 0,
                 captions: list[str] | None = None):
        if not isinstance(captions, (list, type(None))) or \
                not all(isinstance(c, str) for c in captions or []):
            raise UserError(f"the sampler's `captions` is {str(captions)[:40]!r}, not a list "
                            "of captions")
        super().__init__(nets, data_shape, latent_dim, 0, captions=list(captions or []))
        self.vocabulary = data_shape["vocabulary"]
        rows = nets["text"].embed.num_embeddings
        if len(self.vocabulary) != rows:
            raise UserError(f"the vocabulary has {len(self.vocabulary)} words but the text "
                            f"encoder embeds {rows}")
        self._warned: set[str] = set()

    def check(self, options) -> None:
        super().check(options)
        if options.texts is not None and not Path(options.texts).expanduser().is_file():
            raise UserError(f"texts={options.texts}: no such file. Give a text file of "
                            "captions, one a line.")
        if options.text_b is not None and options.text is None:
            raise UserError("text_b= goes with text=: an interpolation walks from one to the "
                            "other (with interpolate=true).")

    def lines(self, options) -> list[str]:
        path = Path(options.texts).expanduser()
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UserError(f"texts={options.texts} is not a UTF-8 text file (a text file of "
                            "captions, one a line, is expected).") from None
        except OSError as err:
            raise UserError(f"texts={options.texts} cannot be read ({err.strerror or err}).") \
                from None
        found = [line.strip() for line in text.splitlines() if line.strip()]
        if not found:
            raise UserError(f"texts={options.texts} holds no caption.")
        return found

    def count(self, num, options=None):
        return len(self.lines(options)) if getattr(options, "texts", None) else num

    def file_names(self, num, options=None):
        if not getattr(options, "texts", None):
            return None
        return [f"{i:04d}_{slug(line)}.png" for i, line in enumerate(self.lines(options))]

    def conditions(self, num, options=None) -> list[str]:
        if getattr(options, "texts", None):
            return self.lines(options)
        if getattr(options, "text", None):
            return [options.text] * num
        defaults = self.settings["captions"] or ["a"]
        return [defaults[i % len(defaults)] for i in range(num)]

    def condition_rows(self, conditions):
        return list(conditions)

    def embed(self, captions: list[str]) -> torch.Tensor:
        tokens, lengths, unknown = encode(captions, self.vocabulary,
                                          self.data_shape["max_length"])
        new = [w for w in unknown if w not in self._warned]
        if new:
            self._warned.update(new)
            log.warning("Words this model never saw, read as unknown: %s", ", ".join(new))
        with eval_mode(self.nets["text"]):
            return self.nets["text"](tokens.to(self.device), lengths.to(self.device)).float()

    def generate(self, z, conditions=None, options=None):
        captions = conditions if conditions is not None else self.conditions(len(z))
        return self.from_text(z, self.embed(list(captions)))

    def from_text(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.generator):
            return self.generator(z.to(self.device), text.to(self.device)).float()

    def interpolation(self, rows, steps, seed, spherical=True, options=None):
        """Each row one latent, its caption walking from ``text`` to ``text_b`` (or, without
        them, between two of the model's captions)."""
        start = getattr(options, "text", None)
        end = getattr(options, "text_b", None)
        defaults = self.settings["captions"] or ["a"]
        start = start or defaults[0]
        end = end or defaults[min(1, len(defaults) - 1)]
        ends = self.embed([start, end])
        t = torch.linspace(0, 1, steps, device=ends.device).view(-1, 1)
        path = (ends[0] + (ends[1] - ends[0]) * t).repeat(rows, 1)
        z = seeded_latents(rows, self.latent_dim, seed).repeat_interleave(steps, 0)
        return torch.cat([self.from_text(z[i:i + 256], path[i:i + 256]).cpu()
                          for i in range(0, len(z), 256)])

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """The contrastive image encoder's vectors (for R-precision)."""
        with eval_mode(self.nets["image"]):
            return self.nets["image"](images.to(self.device)).float()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "caption"


def text_model(model) -> bool:
    """A text-conditional generator and discriminator."""
    return takes(model.generator._target_, "latent_dim", "text_dim") and \
        takes(model.discriminator._target_, "text_dim")


def build(cfg, shape: dict, text_encoder=None, image_encoder=None, encoder_batches: int = 500,
          encoder_lr: float = 1e-3, temperature: float = 0.1, matching_aware: bool = True,
          interpolation: bool = True, ma_gp: float = 0.0, ma_gp_power: float = 6.0,
          text_dim: int = 128, num_fixed: int = 8) -> Text2Image:
    """The text-to-image task: ``model.generator`` and ``model.discriminator`` of
    model=text2image, and the text and image encoders of ``task.text_encoder`` and
    ``task.image_encoder``, on a captioned data set."""
    from hydra.utils import instantiate

    check_model(cfg, "text2image", text_model,
                "a text-conditional generator and discriminator (text_dim)")
    refuse(cfg, "text2image", {
        "model.conditioning": "it is conditioned on captions, not classes. Drop conditioning=.",
        "regularizers": "its discriminator takes the caption too; use task.ma_gp (DF-GAN's "
                        "matching-aware gradient penalty) instead of regularizer=.",
        "augment": "its discriminator judges (image, caption) pairs as they are. Drop augment=.",
        "trainer.n_critic": "it updates D, then G, once per batch.",
    })
    if "vocabulary" not in shape:
        raise UserError("task=text2image needs images with captions. Use dataset=caption_folder "
                        "(images and a metadata.jsonl or metadata.csv) or "
                        "dataset=fashion_captions.")
    size = {"channels": shape["channels"], "image_size": shape["image_size"]}
    G = build_net(cfg.model.generator, latent_dim=cfg.model.latent_dim, text_dim=text_dim, **size)
    D = build_net(cfg.model.discriminator, text_dim=text_dim, **size)
    text = build_net(text_encoder or {"_target_": "ganrun.nets.text2image.TextEncoder"},
                     vocabulary_size=len(shape["vocabulary"]), text_dim=text_dim)
    image = build_net(image_encoder or {"_target_": "ganrun.nets.text2image.ImageEncoder"},
                      text_dim=text_dim, **size)
    return Text2Image(G, D, text, image, instantiate(cfg.loss), cfg.model.latent_dim, shape,
                      encoder_batches, encoder_lr, temperature, matching_aware, interpolation,
                      ma_gp, ma_gp_power,
                      ema=instantiate(cfg.ema)(G) if cfg.get("ema") else None,
                      num_fixed=num_fixed)
