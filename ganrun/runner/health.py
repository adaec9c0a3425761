"""Non-finite updates, found and skipped on the device; the host looks only at the logging
cadence and before a checkpoint is saved.

Asking the host after every update (``bool(torch.isfinite(loss))``) blocks the CPU until the
GPU has finished all queued work, so the next kernels cannot be queued meanwhile. Instead each
update's finite check is a device tensor: the optimizer step is skipped on the device when it is
set (fused optimizers through their ``found_inf`` argument, any other by undoing the step with a
masked copy), and ``Health`` accumulates what happened (how many updates were skipped, the
first one's iteration, tag and whether its loss or only its gradient was not finite) until
``read()``, where the divergence policy acts as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Event:
    """What ``read()`` found: ``count`` of the ``total`` updates since the last read were not
    finite, the first at ``iteration`` in phase ``tag`` (loss/d...) with loss value ``loss``;
    or (``weight``) the weights of a network grew past the bound."""

    count: int
    iteration: int
    tag: str
    loss: float
    total: int = 0
    weight: float | None = None

    def describe(self) -> str:
        if self.weight is not None:
            return f"the weights of {self.tag} grew to {self.weight:.3g}"
        if math.isfinite(self.loss):
            return f"the gradient of {self.tag} is not finite"
        return f"{self.tag} is {self.loss}"

    @property
    def all_skipped(self) -> bool:
        return self.weight is None and self.total > 0 and self.count == self.total


class Health:
    """Device-side record of the non-finite updates since the last ``read()``."""

    def __init__(self):
        self.tags: list[str] = []
        self._state: dict[str, torch.Tensor] | None = None

    def _zeros(self, device) -> dict[str, torch.Tensor]:
        return {"count": torch.zeros((), dtype=torch.long, device=device),
                "total": torch.zeros((), dtype=torch.long, device=device),
                "iteration": torch.full((), -1, dtype=torch.long, device=device),
                "tag": torch.zeros((), dtype=torch.long, device=device),
                "loss": torch.zeros((), dtype=torch.float32, device=device)}

    def record(self, bad: torch.Tensor, tag: str, loss: torch.Tensor, iteration: int) -> None:
        """Adds one update's verdict (``bad``: a 0-d bool tensor), without reading it."""
        if tag not in self.tags:
            self.tags.append(tag)
        if self._state is None or self._state["count"].device != bad.device:
            self._state = self._zeros(bad.device)
        state = self._state
        first = bad & (state["iteration"] < 0)
        state["iteration"] = torch.where(first, torch.full_like(state["iteration"], iteration),
                                         state["iteration"])
        state["tag"] = torch.where(first, torch.full_like(state["tag"], self.tags.index(tag)),
                                   state["tag"])
        state["loss"] = torch.where(first, loss.detach().float().reshape(()), state["loss"])
        state["count"] = state["count"] + bad.long()
        state["total"] = state["total"] + 1

    def read(self) -> Event | None:
        """What happened since the last read (a host sync), or None; then starts afresh."""
        if self._state is None:
            return None
        state, self._state = self._state, None
        count = int(state["count"])
        if not count:
            return None
        return Event(count, int(state["iteration"]), self.tags[int(state["tag"])],
                     float(state["loss"]), int(state["total"]))


def step_unless(optimizer: torch.optim.Optimizer, step, bad: torch.Tensor) -> None:
    """Calls ``step()`` (the optimizer's step, through Lightning's wrapper); where ``bad`` is
    true the parameters and optimizer state end as they were, decided on the device."""
    if optimizer.defaults.get("fused"):
        # Fused Adam, AdamW and SGD take the same flag GradScaler gives them.
        optimizer.found_inf = bad.float()
        optimizer.grad_scale = None
        try:
            step()
        finally:
            del optimizer.found_inf, optimizer.grad_scale
        return
    params = [p for group in optimizer.param_groups for p in group["params"]]
    before = {id(t): t.detach().clone() for t in [*params, *state_tensors(optimizer)]}
    step()
    with torch.no_grad():
        for tensor in [*params, *state_tensors(optimizer)]:
            # A state made by this very step (the first) goes back to zeros, as if absent.
            old = before.get(id(tensor))
            tensor.copy_(torch.where(bad, torch.zeros_like(tensor) if old is None else old,
                                     tensor))


def restore_unless(buffers: list[torch.Tensor], saved: list[torch.Tensor],
                   bad: torch.Tensor) -> None:
    """Where ``bad`` is true, the buffers (batch-norm running statistics, spectral norm's
    vectors, StyleGAN2's w_avg...) a skipped update's forward passes changed go back to
    ``saved``, decided on the device."""
    with torch.no_grad():
        for buffer, old in zip(buffers, saved):
            buffer.copy_(torch.where(bad, old, buffer))


def largest_weight(nets) -> tuple[str, float]:
    """(network name, its largest absolute weight): read by the host at the logging cadence."""
    name, largest = "", 0.0
    for key, net in nets.items():
        params = [p.detach() for p in net.parameters() if p.is_floating_point()]
        if params:
            value = float(torch.stack([p.abs().max() for p in params]).max())
            if not value <= largest:  # NaN as well
                name, largest = key, value
    return name, largest


def state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [value for state in optimizer.state.values() for value in state.values()
            if isinstance(value, torch.Tensor)]
