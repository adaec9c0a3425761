"""The resumable order of an unpaired two-domain data set (CycleGAN's "unaligned" data)."""

import itertools

import torch

from ganrun.data.sampler import ResumableSampler

ITEM_SEEDS = 2**62  # per-item seeds for random crops and flips, below torch's seed limit


class UnpairedSampler(ResumableSampler):
    """Yields ``(index_a, index_b, item_seed)`` triples, a pure function of ``(seed, epoch)``.

    An epoch has ``max(|A|, |B|)`` items, as in the reference: a shuffled position ``i`` takes
    ``A[i % |A|]`` and a ``B`` drawn at random, independently of A, so that the model never
    learns fixed pairs. ``item_seed`` seeds the item's augmentation. All three are drawn here,
    not in the data set, so that worker processes need no epoch number and a resumed run
    (``start_at``) continues the uninterrupted run's items exactly.
    """

    def __init__(self, size_a: int, size_b: int, seed: int):
        super().__init__(max(size_a, size_b), seed)
        self.size_a, self.size_b = size_a, size_b

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator) % self.size_a
        index_b = torch.randint(self.size_b, (self.size,), generator=generator)
        item_seeds = torch.randint(ITEM_SEEDS, (self.size,), generator=generator)
        start, self.start = self.start, 0  # only the resumed epoch is partial
        items = zip(order.tolist(), index_b.tolist(), item_seeds.tolist())
        return itertools.islice(items, start, None)
