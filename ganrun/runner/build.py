"""Building the training module (the runner) from a composed config."""

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganrun.runner.module import Runner
from ganrun.tasks import build_task


def data_shape(datamodule) -> dict:
    """What the networks need to know about the data, saved in every checkpoint."""
    return datamodule.shape()


def build_module(cfg: DictConfig, shape: dict, choices: dict | None = None) -> Runner:
    task = build_task(cfg, shape)
    return Runner(
        task=task,
        # Each player's optimizer from the optimizer node the task names for it.
        optimizers={player: task.own_optimizer(player) or
                    instantiate(cfg.optimizer[task.optimizer_config(player)])
                    for player in task.players()},
        schedule=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        divergence=instantiate(cfg.divergence),
        max_iterations=cfg.trainer.max_steps,
        config=OmegaConf.to_container(cfg, resolve=True),
        choices=choices,
        data_shape=shape,
    )
