"""Scalar logging of the module's per-iteration statistics (losses, D outputs)."""

from ganrun.callbacks.base import IterationCallback, every


class ScalarLogger(IterationCallback):
    """Writes ``pl_module.stats`` to every logger every ``every_n_iterations`` iterations and at
    the last iteration, so the final value is always on the curve (and in the HParams tab).

    The values stay on the device between logs; reading them (a device sync) happens only at
    the logging cadence.
    """

    def __init__(self, every_n_iterations: int = 50):
        self.every_n_iterations = every_n_iterations
        self._last = None

    def on_iteration_end(self, trainer, pl_module, batch):
        if every(pl_module.iteration, self.every_n_iterations):
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        if pl_module.stats and self._last != pl_module.iteration:
            self.write(trainer, pl_module)

    def write(self, trainer, pl_module) -> None:
        values = {tag: float(value) for tag, value in pl_module.stats.items()}
        values["epoch"] = pl_module.data_position["epoch"]
        for logger in trainer.loggers:
            logger.log_metrics(values, step=pl_module.iteration)
        self._last = pl_module.iteration
