"""An exponential moving average of the generator's weights (of G only, not D).

After each generator update, every EMA parameter p_ema becomes

    p_ema <- beta * p_ema + (1 - beta) * p

with beta fixed (``decay``) or from a half-life in images as in StyleGAN (``half_life_kimg``):
beta = 0.5 ** (batch_size / half_life_images), where half_life_images = 1000 * half_life_kimg,
capped during ramp-up at ``rampup`` times the images shown to G so far (this step included),
so the average forgets the random initial weights early. Buffers (batch-norm statistics) are
copied, not averaged. The copy is a registered submodule, so checkpoints hold it.
"""

import copy

import torch
from torch import nn

from ganrun.errors import UserError


class GeneratorEMA(nn.Module):
    def __init__(self, generator: nn.Module, decay: float | None = None,
                 half_life_kimg: float | None = None, rampup: float | None = None):
        super().__init__()
        if (decay is None) == (half_life_kimg is None):
            raise UserError("The generator EMA needs exactly one of ema.decay (e.g. 0.999) and "
                            "ema.half_life_kimg (e.g. 10). Set one and make the other null.")
        if decay is not None and not 0 <= decay < 1:
            raise UserError(f"ema.decay must be in [0, 1), got {decay}. Use e.g. 0.999.")
        self.decay, self.half_life_kimg, self.rampup = decay, half_life_kimg, rampup
        self.generator = copy.deepcopy(generator).requires_grad_(False)

    def beta(self, images_seen: int, batch_size: int) -> float:
        if self.decay is not None:
            return self.decay
        half_life = self.half_life_kimg * 1000
        if self.rampup is not None:
            half_life = min(half_life, images_seen * self.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, generator: nn.Module, images_seen: int, batch_size: int) -> None:
        beta = self.beta(images_seen, batch_size)
        for ema, current in zip(self.generator.parameters(), generator.parameters()):
            ema.copy_(current.detach().lerp(ema, beta))
        for ema, current in zip(self.generator.buffers(), generator.buffers()):
            ema.copy_(current)
