"""Losses that go bad on purpose, to test what a run does when training diverges."""

import torch

from ganrun.training.losses import NonSaturating


class NaNAt(NonSaturating):
    """The discriminator loss is NaN on D updates ``start`` .. ``start + count - 1`` (1-based)."""

    def __init__(self, start: int = 3, count: int = 1_000_000):
        self.start, self.count, self.calls = start, count, 0

    def d_loss(self, real, fake):
        self.calls += 1
        loss = super().d_loss(real, fake)
        bad = self.start <= self.calls < self.start + self.count
        return loss * torch.nan if bad else loss
