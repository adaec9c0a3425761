"""Experiment trackers for ``logger=``: TensorBoard (the default), CSV, MLflow and Weights &
Biases, or several at once (``logger=[tensorboard,mlflow]``).

Each is a Lightning logger that takes the same things from ganrun: the scalars (Lightning's
``log_metrics``), the sample grids and metric pictures (``log_grid``), and the run's record
(``log_run``: the curated hyperparameters that TensorBoard's HParams tab shows, the tags they
are compared on, the run's name and its folder). Checkpoints stay files in the run folder; the
trackers get their path. A tracker continues its own run when a run folder is
resumed: the run's id is kept in the folder.

A tracker of your own: a Lightning logger with ``log_grid`` and ``log_run``, and a YAML in
``logger/`` whose ``_target_`` names it (``# @package logger.<name>``).
"""

from __future__ import annotations

import csv
import importlib.util
import logging
from pathlib import Path

import torch
from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

from ganrun.errors import UserError

log = logging.getLogger("ganrun")


def log_grid(loggers, tag: str, image: torch.Tensor, step: int) -> None:
    """A (3, H, W) picture in [0, 1] to every tracker that takes pictures."""
    for logger in loggers:
        if hasattr(logger, "log_grid"):
            logger.log_grid(tag, image, step)


def log_run(loggers, params: dict, metrics: list[str], name: str, folder: str) -> None:
    """The run's record to every tracker; a plain Lightning logger gets the parameters."""
    for logger in loggers:
        if hasattr(logger, "log_run"):
            logger.log_run(params, metrics, name, folder)
        else:
            logger.log_hyperparams(params)


def require(package: str, logger: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise UserError(f"logger={logger} needs the {package} package, which is not installed. "
                        f"Install it with: pip install 'ganrun[{logger}]' (or pip install "
                        f"{package}), or choose another logger (logger=tensorboard, csv, mlflow, "
                        "wandb or a list such as logger=[tensorboard,csv]).")


def _uint8_hwc(image: torch.Tensor):
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


class _RunId:
    """A tracker's run id, kept in the run folder so that a resumed run continues it."""

    def __init__(self, folder: str | Path | None, name: str):
        self.path = Path(folder) / f".{name}_run_id" if folder else None

    def read(self) -> str | None:
        if self.path is None or not self.path.is_file():
            return None
        return self.path.read_text().strip() or None

    def write(self, run_id: str) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"{run_id}\n")


class TensorBoard(TensorBoardLogger):
    """Events straight into the run folder (``tensorboard --logdir outputs``). A resumed run
    drops the points at or after its restart that the interrupted run had written, so curves
    continue without duplicate or backward points."""

    def __init__(self, save_dir: str, resumed_at: int = 0, **kwargs):
        super().__init__(save_dir, name="", version="", default_hp_metric=False,
                         purge_step=resumed_at + 1, **kwargs)

    def log_grid(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.experiment.add_image(tag, image, step)

    def log_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        # The HParams tab shows each metric's last value from the scalar curves themselves:
        # nothing is written at step 0, and no curve gets a fake first point.
        experiment, start, end = hparams(params, {tag: 0.0 for tag in metrics})
        _named(start, name)
        writer = self.experiment.file_writer
        for summary in (experiment, start, end):
            writer.add_summary(summary)


def _named(start, name: str) -> None:
    """Sets the session's group name (the HParams tab's trial name) in its summary, in place."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    value = start.value[0]
    data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    data.session_start_info.group_name = name
    value.metadata.plugin_data.content = data.SerializeToString()


class CSV(CSVLogger):
    """``csv/metrics.csv`` (one row per logged step) and ``csv/hparams.yaml`` in the run
    folder; pictures stay the PNG files of ``samples/``. A resumed run drops the rows after
    its restart, as TensorBoard does."""

    def __init__(self, save_dir: str, resumed_at: int = 0, **kwargs):
        super().__init__(save_dir, name="csv", version="", **kwargs)
        kept = _rows_up_to(Path(self.log_dir) / "metrics.csv", resumed_at)
        if kept:
            # Lightning's writer deletes an existing metrics.csv when it starts: the rows up to
            # the restart go back into it, to be written with the first new ones.
            self.experiment.metrics[:0] = kept

    def log_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        self.log_hyperparams({"run_name": name, "run_folder": str(folder), **params})


def _rows_up_to(path: Path, step: int) -> list[dict]:
    if not step or not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if v != ""} for row in rows
            if row.get("step") and int(float(row["step"])) <= step]


class MLflow(MLFlowLogger):
    """An MLflow run in ``experiment_name`` on ``tracking_uri``: a server (``http://host:5000``),
    a local database (``sqlite:///mlflow.db``, the default) or a folder (``file:./mlruns``,
    which MLflow 3 accepts with ``MLFLOW_ALLOW_FILE_STORE=true``). Pictures are logged as
    MLflow images."""

    def __init__(self, run_folder: str, experiment_name: str = "ganrun",
                 tracking_uri: str | None = None, resumed_at: int = 0, **kwargs):
        require("mlflow", "mlflow")
        from mlflow.exceptions import MlflowException

        self._id_file = _RunId(run_folder, "mlflow")
        try:
            super().__init__(experiment_name=experiment_name, tracking_uri=tracking_uri,
                             run_id=self._id_file.read(), run_name=Path(run_folder).name,
                             **kwargs)
        except MlflowException as err:
            raise UserError(f"logger=mlflow cannot use the tracking store {tracking_uri}: "
                            f"{' '.join(str(err).split())[:600]} Give another "
                            "logger.mlflow.tracking_uri (a server http://host:port, or "
                            "sqlite:///mlflow.db).") from None

    def log_grid(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.experiment.log_image(self.run_id, _uint8_hwc(image), key=tag.replace("/", "_"),
                                  step=step)

    def log_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        from mlflow.exceptions import MlflowException

        self._id_file.write(self.run_id)
        for key, value in {"mlflow.runName": name, "ganrun.run_folder": str(folder),
                           "ganrun.checkpoints": str(Path(folder) / "checkpoints")}.items():
            self.experiment.set_tag(self.run_id, key, value)
        try:
            self.log_hyperparams(params)
        except MlflowException as err:  # a resumed run that changed a parameter (e.g. lr)
            log.warning("MLflow kept the run's first parameter values: %s",
                        " ".join(str(err).split())[:300])


class WandB(WandbLogger):
    """A Weights & Biases run in ``project``; ``offline=true`` writes it under the run folder's
    ``wandb/`` only (``wandb sync`` uploads it later)."""

    def __init__(self, run_folder: str, project: str = "ganrun", offline: bool = False,
                 resumed_at: int = 0, **kwargs):
        require("wandb", "wandb")
        self._id_file = _RunId(run_folder, "wandb")
        run_id = self._id_file.read()
        super().__init__(project=project, save_dir=run_folder, offline=offline, id=run_id,
                         resume="allow" if run_id else None, name=Path(run_folder).name,
                         **kwargs)

    def log_grid(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.log_image(key=tag, images=[_uint8_hwc(image)], step=step)

    def log_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        self._id_file.write(self.version)
        self.experiment.name = name
        self.experiment.config.update(params, allow_val_change=True)
        self.experiment.summary.update({"run_folder": str(folder),
                                        "checkpoints": str(Path(folder) / "checkpoints")})
