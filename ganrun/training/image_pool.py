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

    Its draws come from torch's global RNG, which the run seeds and its checkpoints restore; the
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
        """The batch for the discriminator, detached from the generator's graph."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        self._allocate(images)
        # Drawn for every image, swap or not, so the RNG advances the same way whatever is stored.
        swaps = (torch.rand(len(images)) < 0.5).tolist()
        slots = torch.randint(self.pool_size, (len(images),)).tolist()
        count, returned = int(self.count), []
        for image, swap, slot in zip(images, swaps, slots):
            if count < self.pool_size:
                self.images[count] = image
                count += 1
                returned.append(image)
            elif swap:
                returned.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                returned.append(image)
        self.count.fill_(count)
        return torch.stack(returned)

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
