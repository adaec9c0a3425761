"""A shuffling sampler whose order can be resumed in the middle of an epoch."""

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """A random order per epoch that is a pure function of ``(seed, epoch)``.

    A resumed run calls ``start_at(n)`` to skip the ``n`` samples of the current epoch that the
    interrupted run already used, so it draws exactly the batches the uninterrupted run would
    have drawn. It uses its own generator: fetching data never moves the global RNG, which the
    training step uses for latents.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed = size, seed
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:  # called by Lightning before every epoch
        self.epoch = epoch

    def start_at(self, offset: int) -> None:
        self.start = offset

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator)[self.start:]
        self.start = 0  # only the resumed epoch is partial
        return iter(order.tolist())
