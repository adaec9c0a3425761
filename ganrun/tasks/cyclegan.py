"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Networks: ``G_AB`` (A -> B), ``G_BA`` (B -> A), ``D_A`` (judges domain A images), ``D_B``
(judges domain B). Each batch is one update of both generators together (adversarial terms,
cycle consistency ``lambda_a``/``lambda_b`` x L1, identity ``lambda_identity`` x the cycle
weight x L1), then one of both discriminators on real images against fakes from the image
pools, their losses halved; as in the reference code (junyanz/pytorch-CycleGAN-and-pix2pix).
"""

import torch
import torch.nn.functional as F
from torch import nn

from ganrun.errors import UserError
from ganrun.image_pool import ImagePool
from ganrun.losses import GANLoss
from ganrun.tasks.base import Phase, Task


class CycleGAN(Task):
    iteration_phase = "D"  # an iteration is one G update and one D update

    def __init__(self, G_AB: nn.Module, G_BA: nn.Module, D_A: nn.Module, D_B: nn.Module,
                 loss: GANLoss, channels_a: int, channels_b: int, image_size: int,
                 lambda_a: float = 10.0, lambda_b: float = 10.0, lambda_identity: float = 0.5,
                 pool_size: int = 50, num_fixed: int = 8):
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
        # Past fakes per domain, in the checkpoint with their RNG draws: resume stays exact.
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        # Test images of each domain for the sample grid, filled by prepare().
        self.register_buffer("fixed_a", torch.zeros(num_fixed, channels_a, image_size, image_size))
        self.register_buffer("fixed_b", torch.zeros(num_fixed, channels_b, image_size, image_size))
        self._fakes: tuple[torch.Tensor, torch.Tensor] | None = None

    def players(self):
        return {"D": ["D_A", "D_B"], "G": ["G_AB", "G_BA"]}

    def phases(self):
        return [Phase("G", "G"), Phase("D", "D")]

    def prepare(self, datamodule) -> None:
        batch = datamodule.fixed_batch(len(self.fixed_a))
        self.fixed_a.copy_(batch["A"])
        self.fixed_b.copy_(batch["B"])

    def phase_loss(self, phase, batch, runner):
        real_a, real_b = batch["A"], batch["B"]
        if phase.name == "G":
            return self.generator_loss(real_a, real_b)
        return self.discriminator_loss(real_a, real_b)

    def generator_loss(self, real_a, real_b):
        G_AB, G_BA, D_A, D_B = (self.nets[k] for k in ("G_AB", "G_BA", "D_A", "D_B"))
        fake_b, fake_a = G_AB(real_a), G_BA(real_b)
        # D's update of this batch judges these fakes, made before G's step (as the reference).
        self._fakes = (fake_a.detach(), fake_b.detach())
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

    def discriminator_loss(self, real_a, real_b):
        fake_a, fake_b = self._fakes
        d_a = 0.5 * self.loss.d_loss(self.nets["D_A"](real_a).float(),
                                     self.nets["D_A"](self.pool_a(fake_a)).float())
        d_b = 0.5 * self.loss.d_loss(self.nets["D_B"](real_b).float(),
                                     self.nets["D_B"](self.pool_b(fake_b)).float())
        self._fakes = None
        loss = d_a + d_b
        return loss, {"loss/d": loss.detach(), "loss/d_a": d_a.detach(), "loss/d_b": d_b.detach()}

    # Sampling: the sample grid, metrics and `ganrun translate`.

    def translate(self, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Images of the source domain in [-1, 1] translated, in eval mode."""
        return translate_with(self.nets["G_AB" if direction == "AtoB" else "G_BA"], images)

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """Rows: real A, G_AB(A), G_BA(G_AB(A)), real B, G_BA(B), G_AB(G_BA(B)), from fixed
        test images (grayscale shown as RGB when the other domain is RGB)."""
        a, b = self.fixed_a[:nrow], self.fixed_b[:nrow]
        fake_b, fake_a = self.translate(a), self.translate(b, "BtoA")
        rows = [a, fake_b, self.translate(fake_b, "BtoA"), b, fake_a, self.translate(fake_a)]
        channels = max(a.shape[1], b.shape[1])
        return torch.cat([row.expand(-1, channels, -1, -1) for row in rows])

    def metric_generator(self):
        raise UserError("task=cyclegan translates images rather than generating them from "
                        "latents, so the generator metrics (metrics=fid, ...) do not apply. Use "
                        "metrics=translation (FID of translated test images, label "
                        "preservation) or metrics=none.")


@torch.no_grad()
def translate_with(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``net(images)`` in eval mode (restored after), fp32."""
    was_training = net.training
    net.eval()
    try:
        return net(images).float()
    finally:
        net.train(was_training)


def build(cfg, shape: dict, lambda_a: float = 10.0, lambda_b: float = 10.0,
          lambda_identity: float = 0.5, pool_size: int = 50, num_fixed: int = 8) -> CycleGAN:
    """The CycleGAN task: ``model.generator`` twice and ``model.discriminator`` twice, with each
    domain's channels from the unpaired data set."""
    from hydra.utils import instantiate

    if "channels_a" not in shape:
        raise UserError("task=cyclegan needs two unpaired domains, but this data set has one. "
                        "Use dataset=unpaired_folder (root/trainA, trainB, testA, testB) or "
                        "dataset=fashion_domains.")
    a, b = shape["channels_a"], shape["channels_b"]

    generator, discriminator = cfg.model.generator, cfg.model.discriminator
    return CycleGAN(
        G_AB=instantiate(generator, in_channels=a, out_channels=b),
        G_BA=instantiate(generator, in_channels=b, out_channels=a),
        D_A=instantiate(discriminator, in_channels=a),
        D_B=instantiate(discriminator, in_channels=b),
        loss=instantiate(cfg.loss), channels_a=a, channels_b=b, image_size=shape["image_size"],
        lambda_a=lambda_a, lambda_b=lambda_b, lambda_identity=lambda_identity,
        pool_size=pool_size, num_fixed=num_fixed)
