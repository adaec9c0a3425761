"""Paired image-to-image translation (pix2pix, Isola et al. 2017), which also covers
super-resolution (SRGAN, Ledig et al. 2017) and inpainting (context encoders, Pathak et al.
2016): a generator maps an input to an output, a conditional discriminator judges
(input, output) pairs, and G also pays a reconstruction term.

Each batch: one D update on (input, target) against (input, G(input)) with its loss halved,
then one G update on ``adversarial_weight`` x the adversarial term + ``lambda_l1`` x L1(G(x), y)
(the L1 weighted ``hole_weight`` inside an inpainting hole). For the first ``pixel_warmup``
batches G learns from the L1 term alone and D waits, as ESRGAN pre-trains on the pixel loss.

Pairs come from a paired data set (``dataset=paired_folder``: dict batches) or are derived
from any image data set by ``degrade`` (``ganrun.data.degrade``): the targets are the data
set's images, the inputs their degradation.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.data.degrade import Degradation, apply_mask, split_mask
from ganrun.errors import UserError
from ganrun.inference.model import Translator, eval_mode
from ganrun.training.losses import GANLoss
from ganrun.training.regularizers import after_d_step, d_penalties
from ganrun.tasks.base import Phase, Step, Task
from ganrun.tasks.options import build_net, check_model, refuse, regularizers

TEST_MODES = ("eval", "train")
TEST_SEED = 1_000_003  # test pair k uses seed TEST_SEED + k: the same pairs on every run


class Pix2Pix(Task):
    iteration_phase = "G"

    def __init__(self, G: nn.Module, D: nn.Module, loss: GANLoss, input_channels: int,
                 output_channels: int, image_size: int, degrade: Degradation | None = None,
                 lambda_l1: float = 100.0, adversarial_weight: float = 1.0,
                 hole_weight: float = 1.0, pixel_warmup: int = 0, regularizers: dict | None = None,
                 num_fixed: int = 8, test_mode: str = "eval", data_shape: dict | None = None,
                 degrade_config: dict | None = None):
        super().__init__()
        if test_mode not in TEST_MODES:
            raise UserError(f"task.test_mode must be one of {', '.join(TEST_MODES)}, got "
                            f"{test_mode!r}: eval (running statistics, no dropout) or train "
                            "(the reference's test script: batch statistics, dropout on).")
        self.test_mode = test_mode
        self.nets = nn.ModuleDict({"G": G, "D": D})
        self.loss, self.degrade = loss, degrade
        self.lambda_l1, self.adversarial_weight = lambda_l1, adversarial_weight
        self.hole_weight, self.pixel_warmup = hole_weight, pixel_warmup
        self.regularizers = regularizers or {}
        self.scale = degrade.scale if degrade else 1
        self.has_mask = bool(degrade and degrade.has_mask)
        self.data_shape, self.degrade_config = dict(data_shape or {}), degrade_config
        self.input_channels = input_channels
        small = image_size // self.scale
        # Test pairs for the sample grid, filled by prepare().
        self.register_buffer("fixed_a", torch.zeros(num_fixed, input_channels, small, small))
        self.register_buffer("fixed_b", torch.zeros(num_fixed, output_channels, image_size,
                                                    image_size))

    def players(self):
        return {"D": ["D"], "G": ["G"]}

    def phases(self):
        return [Phase("D", "D", start=self.pixel_warmup + 1), Phase("G", "G")]

    # Pairs.

    def begin_batch(self, batch, step: Step) -> Pairs:
        """(inputs, targets) of a training batch: D's and G's updates see the same pairs."""
        if isinstance(batch, dict):
            return Pairs(batch["A"], batch["B"], step.batch)
        targets = batch[0]
        seeds = draw_seeds(len(targets))  # the run's RNG: resumable
        return Pairs(self.degrade(targets, seeds, train=True), targets, step.batch)

    def prepare(self, datamodule) -> None:
        inputs, targets = test_pairs(datamodule, len(self.fixed_a), self.degrade)
        count = len(inputs)
        self.fixed_a[:count].copy_(inputs)
        self.fixed_b[:count].copy_(targets)

    # Losses.

    def phase_loss(self, phase, batch: Pairs, step: Step):
        if phase.name == "D":
            return self.discriminator_loss(batch.inputs, batch.targets, step.updates("D"))
        return self.generator_loss(batch.inputs, batch.targets,
                                   warmup=batch.number <= self.pixel_warmup)

    def generate(self, inputs: torch.Tensor) -> torch.Tensor:
        return paste_known(self.nets["G"](inputs), inputs, self.has_mask)

    def pair(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """What D judges: the input (up-sampled to the output's size) and the output, stacked."""
        if inputs.shape[-2:] != outputs.shape[-2:]:
            inputs = F.interpolate(inputs, outputs.shape[-2:], mode="nearest")
        return torch.cat([inputs.to(outputs.dtype), outputs], 1)

    def discriminate(self, inputs, outputs) -> torch.Tensor:
        return self.nets["D"](self.pair(inputs, outputs)).float()

    def discriminator_loss(self, inputs, targets, d_updates: int):
        with torch.no_grad():
            fake = self.generate(inputs)
        real_pair, fake_pair = self.pair(inputs, targets), self.pair(inputs, fake)
        real_out, fake_out = self.nets["D"](real_pair).float(), self.nets["D"](fake_pair).float()
        loss = 0.5 * self.loss.d_loss(real_out, fake_out)
        # The penalties differentiate D with respect to the stacked pair.
        conditional = lambda x, labels: self.nets["D"](x)  # noqa: E731  (the penalty API's D)
        penalties = d_penalties(self.regularizers, conditional, real_pair, fake_pair, None,
                                d_updates)
        stats = {"loss/d": loss.detach(), "d/real": real_out.detach().mean(),
                 "d/fake": fake_out.detach().mean(),
                 **{f"reg/{name}": value.detach() for name, value in penalties.items()}}
        return loss + sum(penalties.values()), stats

    def after_update(self, phase, batch, step: Step):
        if phase.name == "D":
            after_d_step(self.regularizers, self.nets["D"])

    def generator_loss(self, inputs, targets, warmup: bool = False):
        fake = self.generate(inputs)
        l1 = (fake.float() - targets).abs()
        if self.has_mask and self.hole_weight != 1:
            mask = split_mask(inputs)[1]
            l1 = l1 * (1 + (self.hole_weight - 1) * mask)
        terms = {"loss/g_l1": self.lambda_l1 * l1.mean()}
        if not warmup:
            fake_out = self.discriminate(inputs, fake)
            real_out = None
            if self.loss.needs_real_in_g_step:  # relativistic losses: D's view of the reals
                with torch.no_grad():
                    real_out = self.discriminate(inputs, targets)
            terms["loss/g_adv"] = self.adversarial_weight * self.loss.g_loss(fake_out, real_out)
        loss = sum(terms.values())
        return loss, {"loss/g": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    # After training: the sample grid, and the translator of metrics, `ganrun translate`,
    # exports.

    def inference(self) -> "Pix2PixTranslator":
        return Pix2PixTranslator({"G": self.nets["G"]}, self.data_shape,
                                 input_channels=self.input_channels,
                                 degrade=self.degrade_config, test_mode=self.test_mode)

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """Rows of ``nrow``: inputs (shown at the output's size; an inpainting input without
        its mask channel), outputs, targets, from fixed test pairs."""
        inputs, targets = self.fixed_a[:nrow], self.fixed_b[:nrow]
        outputs = self.inference().translate(inputs)
        shown = split_mask(inputs)[0] if self.has_mask else inputs
        shown = F.interpolate(shown, targets.shape[-2:], mode="nearest")
        channels = max(shown.shape[1], targets.shape[1])
        return torch.cat([row.expand(-1, channels, -1, -1) for row in (shown, outputs, targets)])


@dataclass
class Pairs:
    """A batch's (input, target) pairs and its number (from 1)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    number: int


def draw_seeds(n: int) -> list[int]:
    """One seed per image from the run's RNG (checkpointed: a resumed run draws the same)."""
    return [random.getrandbits(62) for _ in range(n)]


def paste_known(outputs: torch.Tensor, inputs: torch.Tensor, has_mask: bool) -> torch.Tensor:
    """G's output; for inpainting, the known pixels pasted back around the hole."""
    if not has_mask:
        return outputs
    known, mask = split_mask(inputs)
    return outputs * mask + known * (1 - mask)


class Pix2PixTranslator(Translator):
    """The generator of a paired translator (pix2pix, super-resolution, inpainting) with its
    degradation: how test inputs are made, the masks it draws, the baseline it must beat."""

    kind = "a paired translator (input -> output)"
    default_metrics = "paired"
    paired = True

    def __init__(self, nets: dict, data_shape: dict, input_channels: int,
                 degrade: dict | None = None, test_mode: str = "eval"):
        from hydra.utils import instantiate

        super().__init__(nets, data_shape, input_channels=input_channels, degrade=degrade,
                         test_mode=test_mode)
        # The degradation's own config: its target was checked like any other when read.
        self.degradation = instantiate(degrade) if degrade else None
        self.scale = self.degradation.scale if self.degradation else 1
        self.takes_mask = bool(self.degradation and self.degradation.has_mask)
        name = getattr(self.degradation, "baseline_name", None)
        self.baseline_names = (name,) if name else ()
        self.size_multiple = getattr(nets["G"], "size_multiple", 4)
        self.test_mode, self._input_channels = test_mode, input_channels

    def input_channels(self, direction: str = "AtoB") -> int:
        return self._input_channels - int(self.takes_mask)

    def inputs(self, images, masks=None, seeds=None):
        if not self.takes_mask:
            return images
        if masks is not None:
            return apply_mask(images, masks)
        seeds = seeds if seeds is not None else range(len(images))
        return self.degradation(images, [TEST_SEED + int(k) for k in seeds], train=False)

    def translate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Inputs (with the mask channel for inpainting) -> outputs in [-1, 1], in eval mode
        (``test_mode=eval``) or as the reference's test script runs G (``train``)."""
        inputs = inputs.to(self.device)
        if self.test_mode == "train":
            return self.translate_as_reference(inputs)
        with eval_mode(self.nets["G"]):
            return paste_known(self.nets["G"](inputs), inputs, self.takes_mask).float()

    @torch.no_grad()
    def translate_as_reference(self, inputs: torch.Tensor) -> torch.Tensor:
        """G in training mode, as the reference's test.py runs pix2pix (no --eval): batch norm
        on each image's own statistics (one image at a time, as its batch of 1) and dropout on.
        A copy of G runs, so the trained G's running statistics stay untouched, under a forked
        RNG seeded alike on every call, so the outputs are repeatable and training's random
        stream is not moved."""
        G = copy.deepcopy(self.nets["G"]).train()
        devices = [inputs.device] if inputs.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            return torch.cat([paste_known(G(image[None]), image[None], self.takes_mask).float()
                              for image in inputs])

    def test_pairs(self, data, n: int):
        return test_pairs(data, n, self.degradation)

    def baseline(self, inputs):
        return self.degradation.baseline(inputs) if self.degradation is not None else None

    def hole(self, inputs):
        return split_mask(inputs)[1] if self.takes_mask else None


def first_images(data, n: int) -> torch.Tensor:
    """The first ``n`` images of a plain data set's split (all when it has fewer)."""
    dataset = data.dataset
    n = min(n, len(dataset))
    if hasattr(dataset, "__getitems__"):
        return torch.cat([dataset.__getitems__(list(range(start, min(start + 500, n))))[0]
                          for start in range(0, n, 500)])
    return torch.stack([dataset[i][0] for i in range(n)])


def test_pairs(data, n: int, degrade: Degradation | None,
               split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    test = data.with_split(split)
    test.drop_last = False
    test.setup()
    if degrade is None:
        n = min(n, test.dataset.size_a)
        batch = test.dataset.fixed_items(n)
        return batch["A"], batch["B"]
    targets = first_images(test, n)
    seeds = [TEST_SEED + k for k in range(len(targets))]
    return degrade(targets, seeds, train=False), targets


def network_options(target: str, **available) -> dict:
    """The options among ``available`` that the network's constructor takes (``image_size``
    for the U-Net's depth, ``scale`` for SRResNet)."""
    import inspect

    from hydra.utils import get_object

    parameters = inspect.signature(get_object(target)).parameters
    return {key: value for key, value in available.items() if key in parameters}


def build(cfg, shape: dict, degrade=None, lambda_l1: float = 100.0,
          adversarial_weight: float = 1.0, hole_weight: float = 1.0, pixel_warmup: int = 0,
          num_fixed: int = 8, test_mode: str = "eval") -> Pix2Pix:
    """The pix2pix task: ``model.generator`` (input channels -> output channels, ``scale``
    times larger for super-resolution) and ``model.discriminator`` on input + output channels."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ganrun.tasks.cyclegan import image_to_image

    check_model(cfg, "pix2pix", image_to_image,
                "image-to-image networks (generators with in_channels and out_channels)")
    refuse(cfg, "pix2pix", {
        "ema": "it translates with the trained generator itself. Drop ema=.",
        "augment": "its discriminator judges (input, output) pairs as they are. Drop augment=.",
        "model.conditioning": "its inputs are images, not classes. Drop conditioning=.",
        "trainer.n_critic": "it updates D, then G, once per batch. Leave trainer.n_critic at 1.",
        "trainer.d_warmup_steps": "its warm-up is task.pixel_warmup (G on L1 alone). Leave "
                                  "trainer.d_warmup_steps at 0.",
    })
    paired = "channels_a" in shape
    degradation = instantiate(degrade) if degrade else None
    if paired and degradation is not None:
        raise UserError("task=pix2pix got both a paired data set and degrade=: the pairs of "
                        "dataset=paired_folder are used as they are. Drop degrade=, or use a "
                        "plain image data set to derive pairs from.")
    if not paired and degradation is None:
        raise UserError("task=pix2pix needs (input, target) pairs, but this data set has plain "
                        "images. Use dataset=paired_folder (A|B images, or A/ and B/ folders), "
                        "or derive pairs from it with degrade=downscale (super-resolution), "
                        "degrade=mask (inpainting), degrade=edges or degrade=grayscale.")
    if paired:
        inputs, outputs = shape["channels_a"], shape["channels_b"]
    else:
        inputs, outputs = degradation.input_channels(shape["channels"]), shape["channels"]
    size, scale = shape["image_size"], degradation.scale if degradation else 1
    generator, discriminator = cfg.model.generator, cfg.model.discriminator
    G = build_net(generator, in_channels=inputs, out_channels=outputs,
                  **network_options(generator._target_, image_size=size, scale=scale))
    if scale != 1 and getattr(G, "scale", 1) != scale:
        raise UserError(f"degrade=downscale with factor {scale} needs a generator whose output "
                        f"is {scale}x larger than its input; {generator._target_} keeps the "
                        "size. Use model=srresnet (experiment=srgan_x4 / sr_fashion_mnist).")
    degrade_config = OmegaConf.to_container(degrade, resolve=True) \
        if OmegaConf.is_config(degrade) else degrade
    return Pix2Pix(
        G=G, D=build_net(discriminator, in_channels=inputs + outputs),
        loss=instantiate(cfg.loss), input_channels=inputs, output_channels=outputs,
        image_size=size, degrade=degradation, lambda_l1=lambda_l1,
        adversarial_weight=adversarial_weight, hole_weight=hole_weight,
        pixel_warmup=pixel_warmup, regularizers=regularizers(cfg), num_fixed=num_fixed,
        test_mode=test_mode, data_shape=shape, degrade_config=degrade_config)
