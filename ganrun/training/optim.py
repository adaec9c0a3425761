"""Optimizers with StyleGAN2's lazy-regularization correction (NVIDIA's training_loop.py).

A player whose regularization phase runs every k-th batch takes k + 1 steps per k batches
instead of k; NVIDIA compensates by scaling the learning rate by k / (k + 1) and raising each
Adam beta to the power k / (k + 1), so the optimizer's time constants stay those of the
configured values per batch.
"""

import torch


def lazy_regularized_adam(params, lr: float, betas: list[float], eps: float = 1e-8,
                          reg_interval: int | None = None) -> torch.optim.Adam:
    """Adam with ``lr`` and ``betas`` corrected for a regularization phase every
    ``reg_interval`` batches (null: none, plain Adam)."""
    if reg_interval:
        ratio = reg_interval / (reg_interval + 1)
        lr, betas = lr * ratio, [beta ** ratio for beta in betas]
    # Fused: one kernel for all parameters, and a non-finite update is skipped on the device.
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, fused=True)
