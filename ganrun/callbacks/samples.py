"""Image grids of the generator on its fixed latent batch, to TensorBoard and to PNG files."""

from pathlib import Path

from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from ganrun.callbacks.base import IterationCallback, every


class SampleGrid(IterationCallback):
    """Every ``every_n_iterations`` iterations and at the end of training, renders the fixed
    latents as a grid: logged as the image ``samples`` and saved as ``step_<iteration>.png``."""

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
        images = pl_module.generate(pl_module.fixed_z)
        grid = make_grid(images.cpu(), nrow=self.nrow, normalize=True, value_range=(-1, 1))
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.dirpath / f"step_{pl_module.iteration:07d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, pl_module.iteration)
        self._last = pl_module.iteration

