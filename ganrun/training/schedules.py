"""Learning-rate schedules (the ``scheduler`` group): a factor on each player's base rate.

ganrun sets every optimizer's rate before each batch to ``base * factor * scale``: ``factor``
comes from the schedule, a pure function of the epoch or the iteration, so a resumed run has
the rate of the uninterrupted one without extra state; ``scale`` is the player's checkpointed
correction (``divergence=rollback`` multiplies it). Lightning's scheduler machinery is not used:
manual optimization ignores its ``interval``/``frequency``.
"""

from ganrun.errors import UserError

UNITS = ("epoch", "iteration")


class Schedule:
    unit = "iteration"

    def factor(self, step: int) -> float:
        """The factor during ``step`` (0-based epoch or iteration, by ``unit``)."""
        raise NotImplementedError


class Constant(Schedule):
    def factor(self, step: int) -> float:
        return 1.0


class LinearDecay(Schedule):
    """Constant for ``n_constant`` steps, then linearly to 0 over ``n_decay`` more: the
    CycleGAN/pix2pix reference rule ``1 - max(0, step + 1 - n_constant) / (n_decay + 1)``
    (there with ``n_epochs`` 100, ``n_epochs_decay`` 100 and ``unit: epoch``)."""

    def __init__(self, n_constant: int = 100, n_decay: int = 100, unit: str = "epoch"):
        if unit not in UNITS:
            raise UserError(f"scheduler.unit must be one of {', '.join(UNITS)}, got {unit!r}.")
        if n_constant < 0 or n_decay < 0:
            raise UserError(f"scheduler.n_constant and scheduler.n_decay must be 0 or more, got "
                            f"{n_constant} and {n_decay}.")
        self.n_constant, self.n_decay, self.unit = n_constant, n_decay, unit

    def factor(self, step: int) -> float:
        return max(0.0, 1.0 - max(0, step + 1 - self.n_constant) / (self.n_decay + 1))
