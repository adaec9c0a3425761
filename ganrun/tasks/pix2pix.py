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

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.data.degrade import Degradation, split_mask
from ganrun.errors import UserError
from ganrun.losses import GANLoss
from ganrun.tasks.base import Phase, Task

SEED_RANGE = 2**62
TEST_MODES = ("eval", "train")
TEST_SEED = 1_000_003  # test pair k uses seed TEST_SEED + k: the same pairs on every run


class Pix2Pix(Task):
    iteration_phase = "G"

    def __init__(self, G: nn.Module, D: nn.Module, loss: GANLoss, input_channels: int,
                 output_channels: int, image_size: int, degrade: Degradation | None = None,
                 lambda_l1: float = 100.0, adversarial_weight: float = 1.0,
                 hole_weight: float = 1.0, pixel_warmup: int = 0, regularizers: dict | None = None,
                 num_fixed: int = 8, test_mode: str = "eval"):
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
        small = image_size // self.scale
        # Test pairs for the sample grid, filled by prepare().
        self.register_buffer("fixed_a", torch.zeros(num_fixed, input_channels, small, small))
        self.register_buffer("fixed_b", torch.zeros(num_fixed, output_channels, image_size,
                                                    image_size))
        # This batch's pairs: D's and G's updates of a batch see the same degraded inputs.
        self._pairs: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def players(self):
        return {"D": ["D"], "G": ["G"]}

    def phases(self):
        return [Phase("D", "D", start=self.pixel_warmup + 1), Phase("G", "G")]

    # Pairs.

    def pairs(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of a training batch."""
        if isinstance(batch, dict):
            return batch["A"], batch["B"]
        targets = batch[0]
        seeds = torch.randint(SEED_RANGE, (len(targets),)).tolist()  # the run's RNG: resumable
        return self.degrade(targets, seeds, train=True), targets

    def test_pairs(self, data, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` pairs of the test split (fewer if it is smaller), the same on every
        run: a paired data set's, or the degradation of the first n test images with fixed
        per-image seeds."""
        return test_pairs(data, n, self.degrade)

    def prepare(self, datamodule) -> None:
        inputs, targets = self.test_pairs(datamodule, len(self.fixed_a))
        count = len(inputs)
        self.fixed_a[:count].copy_(inputs)
        self.fixed_b[:count].copy_(targets)

    # Losses.

    def phase_loss(self, phase, batch, runner):
        count = runner.counters["batches"] if runner is not None else 0
        if self._pairs is None or self._pairs[0] != count:
            self._pairs = (count, *self.pairs(batch))
        _, inputs, targets = self._pairs
        if phase.name == "D":
            return self.discriminator_loss(inputs, targets, runner.counters["D"] if runner else 0)
        return self.generator_loss(inputs, targets, warmup=0 < count <= self.pixel_warmup)

    def generate(self, inputs: torch.Tensor, G: nn.Module | None = None) -> torch.Tensor:
        """G's output; for inpainting, the known pixels pasted back around the hole."""
        out = (G or self.nets["G"])(inputs)
        if not self.has_mask:
            return out
        known, mask = split_mask(inputs)
        return out * mask + known * (1 - mask)

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
        penalties = self.d_regularization(real_pair, fake_pair, d_updates)
        stats = {"loss/d": loss.detach(), "d/real": real_out.detach().mean(),
                 "d/fake": fake_out.detach().mean(),
                 **{f"reg/{name}": value.detach() for name, value in penalties.items()}}
        return loss + sum(penalties.values()), stats

    def d_regularization(self, real_pair, fake_pair, d_updates: int) -> dict:
        """D's penalties of ``loss=``/``regularizer=`` (gradient penalty, R1) on the pairs,
        each due every ``interval`` D updates and multiplied by it."""
        conditional = lambda x, labels: self.nets["D"](x)  # noqa: E731  (the penalty API's D)
        due = {name: reg for name, reg in self.regularizers.items()
               if reg.player == "D" and d_updates % reg.interval == 0}
        values = {name: reg.penalty(conditional, real_pair, fake_pair, None)
                  for name, reg in due.items()}
        return {name: due[name].interval * v for name, v in values.items() if v is not None}

    def after_update(self, phase, batch, runner):
        if phase.name == "D":
            for regularizer in self.regularizers.values():
                if regularizer.player == "D":
                    regularizer.after_step(self.nets["D"])

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

    # Sampling: the sample grid, metrics and `ganrun translate`.

    def translate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Inputs (with the mask channel for inpainting) -> outputs in [-1, 1], in eval mode
        (``test_mode=eval``) or as the reference's test script runs G (``train``)."""
        if self.test_mode == "train":
            return self.translate_as_reference(inputs)
        G = self.nets["G"]
        was_training = G.training
        G.eval()
        try:
            with torch.no_grad():
                return self.generate(inputs).float()
        finally:
            G.train(was_training)

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
            return torch.cat([self.generate(image[None], G).float() for image in inputs])

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """Rows of ``nrow``: inputs (shown at the output's size; an inpainting input without
        its mask channel), outputs, targets, from fixed test pairs."""
        inputs, targets = self.fixed_a[:nrow], self.fixed_b[:nrow]
        outputs = self.translate(inputs)
        shown = split_mask(inputs)[0] if self.has_mask else inputs
        shown = F.interpolate(shown, targets.shape[-2:], mode="nearest")
        channels = max(shown.shape[1], targets.shape[1])
        rows = [shown, outputs, targets]
        return torch.cat([row.expand(-1, channels, -1, -1) for row in rows])

    def metric_generator(self):
        raise UserError("task=pix2pix translates paired inputs rather than generating images "
                        "from latents, so the generator metrics (metrics=fid, ...) do not "
                        "apply. Use metrics=paired (PSNR, SSIM and FID against the targets, "
                        "with the baseline) or metrics=none.")


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

    from ganrun.runner.build import regularizers

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
    for side, node in (("generator", generator), ("discriminator", discriminator)):
        if "in_channels" not in network_options(node._target_, in_channels=0):
            raise UserError(f"task=pix2pix needs image-to-image networks, but the {side} "
                            f"{node._target_} makes images from latents. Use model=pix2pix "
                            "(U-Net), model=pix2pix_resnet or model=srresnet (super-resolution), "
                            "or a preset: experiment=pix2pix_facades, srgan_x4, inpaint_center.")
    G = instantiate(generator, in_channels=inputs, out_channels=outputs,
                    **network_options(generator._target_, image_size=size, scale=scale))
    if scale != 1 and getattr(G, "scale", 1) != scale:
        raise UserError(f"degrade=downscale with factor {scale} needs a generator whose output "
                        f"is {scale}x larger than its input; {generator._target_} keeps the "
                        "size. Use model=srresnet (experiment=srgan_x4 / sr_fashion_mnist).")
    return Pix2Pix(
        G=G, D=instantiate(discriminator, in_channels=inputs + outputs),
        loss=instantiate(cfg.loss), input_channels=inputs, output_channels=outputs,
        image_size=size, degrade=degradation, lambda_l1=lambda_l1,
        adversarial_weight=adversarial_weight, hole_weight=hole_weight,
        pixel_warmup=pixel_warmup, regularizers=regularizers(cfg), num_fixed=num_fixed,
        test_mode=test_mode)
