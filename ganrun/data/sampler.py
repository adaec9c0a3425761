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

    def permutation(self) -> torch.Tensor:
        """This epoch's order (from the resume offset on) as a tensor."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator)[self.start:]
        self.start = 0  # only the resumed epoch is partial
        return order

    def __iter__(self):
        return iter(self.permutation().tolist())


class DeviceBatches(Sampler[torch.Tensor]):
    """Batches of indices as tensors on ``device`` (a DataLoader's ``batch_sampler``), for a
    split held on that device (``dataset.on_device=true``): ``sampler``'s order, moved there
    once per epoch and sliced there, so that a batch is one index op on the device. Indexing a
    CUDA tensor with a Python list copies the list from host memory first, and waits for it,
    on every batch. Lightning calls ``sampler.set_epoch``; the order is ``ResumableSampler``'s,
    so the batches, and a resume in the middle of an epoch, are those of the host path."""

    def __init__(self, sampler: ResumableSampler, batch_size: int, drop_last: bool, device):
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.device = torch.device(device)

    def __len__(self) -> int:
        size, batch = self.sampler.size, self.batch_size
        return size // batch if self.drop_last else -(-size // batch)

    def __iter__(self):
        order = self.sampler.permutation().to(self.device)
        end = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, end, self.batch_size):
            yield order[start:start + self.batch_size]
