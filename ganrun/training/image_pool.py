"""A history of generated images for the discriminator (Shrivastava et al. 2017), as CycleGAN
uses it: the discriminator also sees older fakes, so it does not just chase the latest
generator and the two oscillate less."""

import torch
from torch import nn

from ganrun.errors import UserError


class ImagePool(nn.Module):
    """Up to ``pool_size`` past images (0: no pool). ``forward(images)`` returns a batch of the
    same shape, per image: while the pool fills, the image itself (and it is stored); then with
    probability 1/2 a stored image at a random slot, which the new one replaces, else the new one.

    Its draws come from torch's RNG of the images' device, which the run seeds and its
    checkpoints restore; the
    stored images and their count are buffers, so a checkpoint holds them too and a resumed run
    gets exactly the images the uninterrupted one would have got. The buffer is allocated at the
    first call, when the image shape becomes known, and takes the stored shape when loaded.
    """

    def __init__(self, pool_size: int = 50):
        super().__init__()
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 0:
            raise UserError(f"The image pool size must be an integer >= 0 (0: no pool), got "
                            f"{pool_size!r}. Fix pool_size in the task config.")
        self.pool_size = pool_size
        self.register_buffer("images", torch.empty(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The batch for the discriminator, detached from the generator's graph.

        Computed for the whole batch at once on the device (no value is read on the host), with
        exactly the result of handling the images one by one: an image that swaps returns what
        its slot held just before it, which may be an image stored earlier in the same batch."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        self._allocate(images)
        n, device = len(images), images.device
        # Drawn for every image, swap or not, so the RNG advances the same way whatever is
        # stored; on the images' device, so that no copy from the host waits for it.
        swaps = torch.rand(n, device=device) < 0.5
        slots = torch.randint(self.pool_size, (n,), device=device)
        order = torch.arange(n, device=device)
        position = self.count + order                     # where a filling image goes
        filling = position < self.pool_size
        swapping = swaps & ~filling
        # The slot each image writes (-1: none): its fill position, or the slot it swaps into.
        written = torch.where(filling, position, torch.where(swapping, slots, -1))
        # What a swapping image returns: the last earlier write to its slot in this batch,
        # else what the pool held.
        earlier = (written.unsqueeze(0) == slots.unsqueeze(1)) & (order.unsqueeze(0) < order.unsqueeze(1))
        previous = torch.where(earlier, order.unsqueeze(0), -1).amax(dim=1)
        held = torch.where((previous >= 0).view(-1, *[1] * (images.dim() - 1)),
                           images[previous.clamp(min=0)], self.images[slots])
        returned = torch.where(swapping.view(-1, *[1] * (images.dim() - 1)), held, images)
        # Each slot ends with its last write of the batch.
        writes = written.unsqueeze(0) == torch.arange(self.pool_size, device=device).unsqueeze(1)
        last = torch.where(writes, order.unsqueeze(0), -1).amax(dim=1)
        shape = (-1, *[1] * (images.dim() - 1))
        self.images.copy_(torch.where((last >= 0).view(shape), images[last.clamp(min=0)],
                                      self.images))
        self.count.copy_(torch.clamp(self.count + n, max=self.pool_size))
        return returned

    def _allocate(self, images: torch.Tensor) -> None:
        shape = (self.pool_size, *images.shape[1:])
        if self.images.numel() == 0:
            self.images = images.new_zeros(shape)
        elif self.images.shape != shape:
            raise UserError(
                f"The image pool holds images of shape {tuple(self.images.shape[1:])} but was given "
                f"{tuple(images.shape[1:])}. A pool serves one image size and channel count: keep "
                "the training crop size and channels fixed for a run (and for its resumption).")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh pool has an empty buffer; take the checkpoint's shape so the copy fits.
        stored = state_dict.get(prefix + "images")
        if stored is not None and stored.numel() and len(stored) != self.pool_size:
            raise UserError(f"The checkpoint's image pool holds {len(stored)} images but this pool "
                            f"has pool_size={self.pool_size}. Resume with the pool_size the run "
                            f"was started with ({len(stored)}).")
        if stored is not None and stored.shape != self.images.shape:
            self.images = torch.empty_like(stored, device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
