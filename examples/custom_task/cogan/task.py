"""CoGAN (Liu & Tuzel 2016) as a ganrun task that lives outside ganrun: coupled generators
learn a joint distribution of two domains from unpaired images of each.

The two domains come from one plain image data set: each batch is split in two, the first
half is domain A as it is, the second half goes through ``transform`` to become domain B
(inverted by default), so no image of A ever has its counterpart in B. Each batch is one
update of the coupled discriminators on both domains, then one of the coupled generators;
any ``loss=`` of ganrun works.

What ganrun needs from a task, and nothing else: ``players``, ``phases``, ``phase_loss``,
``sample_grid`` and ``inference`` (a sampler here, with a sampling key of its own, ``domain``).
"""

from dataclasses import dataclass

import torch
from hydra.utils import get_object, instantiate
from torch import nn

from ganrun.errors import UserError
from ganrun.inference.model import SampleOptions, Sampler, key
from ganrun.tasks.base import Phase, Step, Task, graph_safe
from ganrun.tasks.options import build_net, check_model, refuse

TRANSFORMS = {"invert": lambda x: -x, "flip": lambda x: x.flip(-1)}
DOMAINS = ("A", "B", "pair")


class CoGAN(Task):
    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss, latent_dim: int,
                 transform: str = "invert", num_fixed: int = 8, data_shape: dict | None = None):
        super().__init__()
        if transform not in TRANSFORMS:
            raise UserError(f"task.transform must be one of {', '.join(TRANSFORMS)}, got "
                            f"{transform!r}.")
        self.nets = nn.ModuleDict({"G": generator, "D": discriminator})
        self.loss, self.latent_dim, self.transform = loss, latent_dim, transform
        self.data_shape = dict(data_shape or {})
        self.register_buffer("fixed_z", torch.randn(num_fixed, latent_dim))

    def players(self):
        return {"D": ["D"], "G": ["G"]}

    def phases(self):
        return [Phase("D", "D"), Phase("G", "G")]

    def begin_batch(self, batch, step: Step):
        """Unpaired halves: A is the first half of the images, B the second half transformed."""
        images = batch[0]
        half = len(images) // 2
        if half < 1:
            raise UserError("task=cogan splits every batch into its two domains: use "
                            "dataset.batch_size=2 or more.")
        return images[:half], TRANSFORMS[self.transform](images[half:2 * half])

    def phase_loss(self, phase, batch, step: Step):
        real_a, real_b = batch
        z = torch.randn(len(real_a), self.latent_dim, device=real_a.device)
        D = self.nets["D"]
        if phase.name == "D":
            with torch.no_grad():
                fake = graph_safe(self.nets["G"](z))  # read after D's calls (CUDA graphs)
            terms = {f"loss/d_{name}": self.loss.d_loss(D(real, k).float(), D(fake[:, k], k).float())
                     for k, (name, real) in enumerate((("a", real_a), ("b", real_b)))}
            loss = sum(terms.values())
            return loss, {"loss/d": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
        fake = self.nets["G"](z)
        loss = sum(self.loss.g_loss(D(fake[:, k], k).float()) for k in range(2))
        return loss, {"loss/g": loss.detach()}

    def sample_grid(self, nrow: int) -> torch.Tensor:
        """Pairs from the fixed latents: a row of domain A, then the same latents in B."""
        sampler = self.inference()
        z = self.fixed_z[:nrow]
        return torch.cat([sampler.generate(z, None, CoGANOptions(domain=d)) for d in "AB"])

    def inference(self) -> "CoGANSampler":
        return CoGANSampler({"G": self.nets["G"]}, self.data_shape, self.latent_dim)


@dataclass
class CoGANOptions(SampleOptions):
    domain: str = key("A", "A, B, or pair: both images of each latent side by side")


class CoGANSampler(Sampler):
    """Images of either domain, or both of the same latent side by side."""

    kind = "a coupled generator of two domains (CoGAN)"
    Options = CoGANOptions

    def check(self, options) -> None:
        super().check(options)
        if options.domain not in DOMAINS:
            raise UserError(f"domain must be one of {', '.join(DOMAINS)}, got "
                            f"'{options.domain}'.")

    def generate(self, z, conditions=None, options=None):
        domain = getattr(options, "domain", "A")
        pairs = super().generate(z, None, options)  # (N, 2, C, H, W), in eval mode
        if domain == "pair":
            return torch.cat([pairs[:, 0], pairs[:, 1]], dim=-1)
        return pairs[:, DOMAINS.index(domain)]


def coupled(model) -> bool:
    return all(getattr(get_object(model[side]._target_), "coupled", False)
               for side in ("generator", "discriminator"))


def build(cfg, shape: dict, transform: str = "invert", num_fixed: int = 8) -> CoGAN:
    check_model(cfg, "cogan", coupled, "coupled networks (model=cogan)")
    refuse(cfg, "cogan", {
        "model.conditioning": "its generators are not class-conditional. Drop conditioning=.",
        "regularizers": "its discriminators take a domain as well. Drop regularizer=.",
        "ema": "this example samples with the trained generators. Drop ema=.",
        "augment": "Drop augment=.",
        "trainer.n_critic": "it updates D and G once per batch.",
    })
    size = {"channels": shape["channels"], "image_size": shape["image_size"]}
    return CoGAN(build_net(cfg.model.generator, latent_dim=cfg.model.latent_dim, **size),
                 build_net(cfg.model.discriminator, **size), instantiate(cfg.loss),
                 cfg.model.latent_dim, transform, num_fixed, data_shape=shape)
