"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Networks: ``G_AB`` (A -> B), ``G_BA`` (B -> A), ``D_A`` (judges domain A images), ``D_B``
(judges domain B). Each batch is one update of both generators together (adversarial terms,
cycle consistency ``lambda_a``/``lambda_b`` x L1, identity ``lambda_identity`` x the cycle
weight x L1), then one of both discriminators on real images against fakes from the image
pools, their losses halved; as in the reference code (junyanz/pytorch-CycleGAN-and-pix2pix).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.errors import UserError
from ganrun.training.image_pool import ImagePool
from ganrun.inference.model import Translator, eval_mode
from ganrun.training.losses import GANLoss
from ganrun.tasks.base import Phase, Step, Task, graph_safe
from ganrun.tasks.options import build_net, check_model, refuse, takes

GENERATORS = {"AtoB": "G_AB", "BtoA": "G_BA"}


@dataclass
class CycleBatch:
    """A batch's real images of both domains, and the fakes G's update made for D's."""

    real_a: torch.Tensor
    real_b: torch.Tensor
    fakes: tuple[torch.Tensor, torch.Tensor] | None = None


class CycleGAN(Task):
    iteration_phase = "D"  # an iteration is one G update and one D update

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, D_A: nn.Module, D_B: nn.Module,
                 loss: GANLoss, channels_a: int, channels_b: int, image_size: int,
                 lambda_a: float = 10.0, lambda_b: float = 10.0, lambda_identity: float = 0.5,
                 pool_size: int = 50, num_fixed: int = 8, data_shape: dict | None = None):
        super().__init__()
        if lambda_identity and channels_a != channels_b:
            raise UserError(
                f"task.lambda_identity={lambda_identity} needs domains with the same number of "
                f"channels (the identity term feeds B images to G_AB), but domain A has "
                f"{channels_a} and domain B {channels_b}. Set task.lambda_identity=0, or give "
                "both domains the same channels (dataset.channels_a / channels_b).")
        self.nets = nn.ModuleDict({"G_AB": G_AB, "G_BA": G_BA, "D_A": D_A, "D_B": D_B})
        self.loss = loss
        self.lambda_a, self.lambda_b, self.lambda_identity = lambda_a, lambda_b, lambda_identity
        self.data_shape = dict(data_shape or {})
        # Past fakes per domain, in the checkpoint with their RNG draws: resume stays exact.
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        # Test images of each domain for the sample grid, filled by prepare().
        self.register_buffer("fixed_a", torch.zeros(num_fixed, channels_a, image_size, image_size))
        self.register_buffer("fixed_b", torch.zeros(num_fixed, channels_b, image_size, image_size))

    def players(self):
        return {"D": ["D_A", "D_B"], "G": ["G_AB", "G_BA"]}

    def phases(self):
        return [Phase("G", "G"), Phase("D", "D")]

    def prepare(self, datamodule) -> None:
        batch = datamodule.fixed_batch(len(self.fixed_a))
        self.fixed_a.copy_(batch["A"])
        self.fixed_b.copy_(batch["B"])

    def begin_batch(self, batch, step: Step) -> CycleBatch:
        return CycleBatch(batch["A"], batch["B"])

    def phase_loss(self, phase, batch: CycleBatch, step: Step):
        if phase.name == "G":
            return self.generator_loss(batch)
        return self.discriminator_loss(batch)

    def generator_loss(self, batch: CycleBatch):
        real_a, real_b = batch.real_a, batch.real_b
        G_AB, G_BA, D_A, D_B = (self.nets[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))
        fake_b, fake_a = G_AB(real_a), G_BA(real_b)
        # D's update of this batch judges these fakes, made before G's step (as the reference);
        # copies, as D's calls come after G's backward.
        batch.fakes = (graph_safe(fake_a.detach()), graph_safe(fake_b.detach()))
        terms = {
            "loss/g_ab": self.loss.g_loss(D_B(fake_b).float()),
            "loss/g_ba": self.loss.g_loss(D_A(fake_a).float()),
            "loss/cycle_a": self.lambda_a * F.l1_loss(G_BA(fake_b), real_a),
            "loss/cycle_b": self.lambda_b * F.l1_loss(G_AB(fake_a), real_b),
        }
        if self.lambda_identity:
            terms["loss/identity_a"] = self.lambda_identity * self.lambda_a * \
                F.l1_loss(G_BA(real_a), real_a)
            terms["loss/identity_b"] = self.lambda_identity * self.lambda_b * \
                F.l1_loss(G_AB(real_b), real_b)
        loss = sum(terms.values())
        return loss, {"loss/g": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    def discriminator_loss(self, batch: CycleBatch):
        fake_a, fake_b = batch.fakes
        d_a = 0.5 * self.loss.d_loss(self.nets["D_A"](batch.real_a).float(),
                                     self.nets["D_A"](self.pool_a(fake_a)).float())
        d_b = 0.5 * self.loss.d_loss(self.nets["D_B"](batch.real_b).float(),
                                     self.nets["D_B"](self.pool_b(fake_b)).float())
        loss = d_a + d_b
        return loss, {"loss/d": loss.detach(), "loss/d_a": d_a.detach(), "loss/d_b": d_b.detach()}

    # After training: the sample grid, and the translator of metrics, `ganrun translate`,
    # exports.

    def inference(self) -> "CycleTranslator":
        return CycleTranslator({name: self.nets[name] for name in GENERATORS.values()},
                               self.data_shape)

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """Rows: real A, G_AB(A), G_BA(G_AB(A)), real B, G_BA(B), G_AB(G_BA(B)), from fixed
        test images (grayscale shown as RGB when the other domain is RGB)."""
        translator = self.inference()
        # Copies: each row is read after later calls of the (maybe compiled) generators.
        translate = lambda x, direction="AtoB": graph_safe(  # noqa: E731
            translator.translate(x, direction))
        a, b = self.fixed_a[:nrow], self.fixed_b[:nrow]
        fake_b, fake_a = translate(a), translate(b, "BtoA")
        rows = [a, fake_b, translate(fake_b, "BtoA"), b, fake_a, translate(fake_a)]
        channels = max(a.shape[1], b.shape[1])
        return torch.cat([row.expand(-1, channels, -1, -1) for row in rows])


class CycleTranslator(Translator):
    """Both generators of an unpaired translator: A -> B and B -> A."""

    kind = "an unpaired translator (A <-> B)"
    directions = ("AtoB", "BtoA")

    def __init__(self, nets: dict, data_shape: dict):
        super().__init__(nets, data_shape)
        self.size_multiple = getattr(nets["G_AB"], "size_multiple", 4)

    def input_channels(self, direction: str = "AtoB") -> int:
        return self.data_shape["channels_a" if direction == "AtoB" else "channels_b"]

    def translate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        net = self.nets[GENERATORS[direction]]
        with eval_mode(net):
            return net(inputs.to(self.device)).float()


def image_to_image(model) -> bool:
    """Generators of images from images, discriminators of images (by their channels)."""
    return takes(model.generator._target_, "in_channels", "out_channels") and \
        takes(model.discriminator._target_, "in_channels")


def build(cfg, shape: dict, lambda_a: float = 10.0, lambda_b: float = 10.0,
          lambda_identity: float = 0.5, pool_size: int = 50, num_fixed: int = 8) -> CycleGAN:
    """The CycleGAN task: ``model.generator`` twice and ``model.discriminator`` twice, with each
    domain's channels from the unpaired data set."""
    from hydra.utils import instantiate

    check_model(cfg, "cyclegan", image_to_image,
                "image-to-image networks (generators with in_channels and out_channels)")
    refuse(cfg, "cyclegan", {
        "regularizers": "its discriminators train on the LSGAN loss alone, as the reference's. "
                        "Drop regularizer= (and loss=wasserstein / wgan_gp, which add one).",
        "ema": "it translates with the trained generators themselves. Drop ema=.",
        "augment": "its discriminators see the images as they are. Drop augment=.",
        "model.conditioning": "its domains are not classes. Drop conditioning=.",
        "trainer.n_critic": "it updates both generators, then both discriminators, once per "
                            "batch. Leave trainer.n_critic at 1.",
        "trainer.d_warmup_steps": "it has no discriminator warm-up. Leave it at 0.",
    })
    loss = instantiate(cfg.loss)
    if loss.needs_real_in_g_step:
        raise UserError("task=cyclegan cannot use a relativistic loss (loss=ragan): its "
                        "generators' update judges translations alone, with no real batch of "
                        "the target domain beside them. Use loss=lsgan (the reference), bce or "
                        "hinge.")
    if "channels_a" not in shape:
        raise UserError("task=cyclegan needs two unpaired domains, but this data set has one. "
                        "Use dataset=unpaired_folder (root/trainA, trainB, testA, testB) or "
                        "dataset=fashion_domains.")
    a, b = shape["channels_a"], shape["channels_b"]
    generator, discriminator = cfg.model.generator, cfg.model.discriminator
    return CycleGAN(
        G_AB=build_net(generator, in_channels=a, out_channels=b),
        G_BA=build_net(generator, in_channels=b, out_channels=a),
        D_A=build_net(discriminator, in_channels=a),
        D_B=build_net(discriminator, in_channels=b),
        loss=loss, channels_a=a, channels_b=b, image_size=shape["image_size"],
        lambda_a=lambda_a, lambda_b=lambda_b, lambda_identity=lambda_identity,
        pool_size=pool_size, num_fixed=num_fixed, data_shape=shape)
