"""Image grids of the generator on its fixed latent batch, to TensorBoard and to PNG files.

For 2-D point data (``dataset=ring``, ``grid``: samples shaped (N, 2, 1, 1)) a grid of 1x1
"images" shows nothing, so the picture is a scatter plot of the points over real ones instead.
"""

from pathlib import Path

from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from ganrun.callbacks.base import IterationCallback, every
from ganrun.loggers import log_grid
from ganrun.scatter import scatter_image


class SampleGrid(IterationCallback):
    """Every ``every_n_iterations`` iterations and at the end of training, renders the fixed
    latents as a grid: logged as the image ``samples`` by every tracker and saved as ``step_<iteration>.png``.
    A conditional model's grid has one row of ``nrow`` images per class."""

    def __init__(self, dirpath: str, every_n_iterations: int = 500, nrow: int = 8):
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.nrow = nrow
        self._last = None

    def on_iteration_end(self, trainer, pl_module, batch):
        if every(pl_module.iteration, self.every_n_iterations):
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        if self._last != pl_module.iteration:
            self.write(trainer, pl_module)

    @rank_zero_only
    def write(self, trainer, pl_module) -> None:
        images = pl_module.task.sample_grid(self.nrow).cpu()
        grid = self.render(images, trainer.datamodule)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.dirpath / f"step_{pl_module.iteration:07d}.png")
        log_grid(trainer.loggers, "samples", grid, pl_module.iteration)
        self._last = pl_module.iteration

    def render(self, images, datamodule):
        """A float (3, H, W) picture in [0, 1] of the generated batch."""
        if images.shape[1:] == (2, 1, 1):
            real_points = getattr(datamodule, "real_points", None)
            return scatter_image(images.flatten(1), real_points(1000) if real_points else None)
        return make_grid(images, nrow=self.nrow, normalize=True, value_range=(-1, 1))

