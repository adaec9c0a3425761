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
import time
from pathlib import Path

import torch
from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

from ganrun.errors import UserError
from ganrun.files import write_text

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
            write_text(self.path, f"{run_id}\n")


class TensorBoard(TensorBoardLogger):
    """Events straight into the run folder (``tensorboard --logdir outputs``). A resumed run
    drops the points at or after its restart that the interrupted run had written, so curves
    continue without duplicate or backward points."""

    def __init__(self, save_dir: str, resumed_at: int = 0, **kwargs):
        if resumed_at:
            _after_existing_events(Path(save_dir))
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


def _after_existing_events(folder: Path) -> None:
    """Returns once a new event file's name sorts after the folder's: TensorBoard reads the
    files in name order, and a name starts with the second the file was opened. A resumed run's
    file opened in the stopped run's second could sort first, and the stopped run's points read
    after it would purge the resumed ones as out of order. At most a second's wait."""
    stamps = [int(part) for part in (p.name.split(".")[3] for p in
                                     folder.glob("events.out.tfevents.*")) if part.isdigit()]
    while stamps and int(time.time()) <= max(stamps):
        time.sleep(0.05)


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
        check_writable(Path(save_dir) / "csv", "logger=csv: the folder",
                       "Give logger.csv.save_dir a folder you can write.")
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


class Relayed:
    """A remote tracker whose calls go through a ``ganrun.relay.Relay``: scalars, pictures, the
    run's record and its end are queued and sent by a background thread, so that a tracker that
    stops answering never stops or slows training (see ``ganrun.relay``)."""

    relay = None

    def start_relay(self, name: str, flush_seconds: float) -> None:
        from ganrun.relay import Relay

        self.relay = Relay(name, flush_seconds=flush_seconds)

    def log_metrics(self, metrics, step=None):
        self.relay.submit(super().log_metrics, dict(metrics), step)

    def log_hyperparams(self, params, *args, **kwargs):
        self.relay.submit(super().log_hyperparams, params, *args, **kwargs)

    def log_grid(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.relay.submit(self.send_grid, tag, image.detach().cpu(), step)

    def log_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        self.relay.submit(self.send_run, params, metrics, name, folder)

    def finalize(self, status: str) -> None:
        self.relay.submit(super().finalize, status)
        self.relay.close()


def check_writable(path: Path, what: str, fix: str) -> None:
    """A ``UserError`` naming ``path`` when a tracker could not write there."""
    import os

    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    in_the_way = target != path and not target.is_dir()  # a file where a folder must be
    if in_the_way or not os.access(target, os.W_OK):
        why = f"{target} is a file, not a folder" if in_the_way else "check its permissions"
        raise UserError(f"{what} {path} cannot be written ({why}). {fix}")


def answers(url: str, timeout: float = 3.0) -> str | None:
    """None when ``url`` answers with a success within ``timeout``; else why not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return None if answer.status < 400 else f"HTTP {answer.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (OSError, ValueError) as err:
        return " ".join(str(getattr(err, "reason", err)).split())[:120]


class MLflow(Relayed, MLFlowLogger):
    """An MLflow run in ``experiment_name`` on ``tracking_uri``: a server (``http://host:5000``),
    a local database (``sqlite:///mlflow.db``, the default) or a folder (``file:./mlruns``,
    which MLflow 3 accepts with ``MLFLOW_ALLOW_FILE_STORE=true``). Pictures are logged as
    MLflow images. The store is checked at start-up (a server that does not answer in 3 s, a
    database or folder that cannot be written: one paragraph, before training); afterwards a
    server that stops answering never stops training (``Relayed``)."""

    def __init__(self, run_folder: str, experiment_name: str = "ganrun",
                 tracking_uri: str | None = None, resumed_at: int = 0,
                 flush_seconds: float = 30.0, **kwargs):
        import os

        require("mlflow", "mlflow")
        from mlflow.exceptions import MlflowException

        # The relay retries on its own: MLflow's client would retry one call for minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        check_store(tracking_uri)
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
        self.start_relay("mlflow", flush_seconds)

    def send_grid(self, tag: str, image: torch.Tensor, step: int) -> None:
        self.experiment.log_image(self.run_id, _uint8_hwc(image), key=tag.replace("/", "_"),
                                  step=step)

    def send_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        from mlflow.exceptions import MlflowException, RestException

        self._id_file.write(self.run_id)
        for key, value in {"mlflow.runName": name, "ganrun.run_folder": str(folder),
                           "ganrun.checkpoints": str(Path(folder) / "checkpoints")}.items():
            self.experiment.set_tag(self.run_id, key, value)
        try:
            MLFlowLogger.log_hyperparams(self, params)
        except RestException as err:  # a resumed run that changed a parameter (e.g. lr)
            log.warning("MLflow kept the run's first parameter values: %s",
                        " ".join(str(err).split())[:300])
        except MlflowException as err:
            if "Changing param values is not allowed" not in str(err):
                raise  # the server is down: the relay keeps the call and retries
            log.warning("MLflow kept the run's first parameter values: %s",
                        " ".join(str(err).split())[:300])


def check_store(uri: str | None) -> None:
    """One paragraph at start-up, within seconds, for a store MLflow could not use."""
    from urllib.parse import urlparse

    fix = ("Start the server (mlflow server --host 127.0.0.1 --port 5000 ...), give another "
           "logger.mlflow.tracking_uri, or train with logger=tensorboard (or csv).")
    if not uri:
        return
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        why = answers(uri.rstrip("/") + "/health")
        if why is not None:
            raise UserError(f"logger=mlflow: no MLflow tracking server answers at {uri} ({why}); "
                            f"nothing was trained. {fix}")
    elif parsed.scheme == "sqlite":
        path = uri.split(":///", 1)[-1]
        check_writable(Path(path), "logger=mlflow: the SQLite store",
                       "Give a tracking_uri in a folder you can write (sqlite:///mlflow.db).")
    elif parsed.scheme in ("file", ""):
        check_writable(Path(parsed.path or uri), "logger=mlflow: the store folder",
                       "Give a tracking_uri in a folder you can write.")


class WandB(Relayed, WandbLogger):
    """A Weights & Biases run in ``project``; ``offline=true`` writes it under the run folder's
    ``wandb/`` only (``wandb sync`` uploads it later). Online, a W&B server that does not answer
    within 3 s at start-up makes the run offline, said in one line; one that stops answering
    later never stops training (``Relayed``)."""

    def __init__(self, run_folder: str, project: str = "ganrun", offline: bool = False,
                 resumed_at: int = 0, flush_seconds: float = 30.0, **kwargs):
        import os

        require("wandb", "wandb")
        if not offline:
            base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
            why = answers(base.rstrip("/") + "/healthz")
            if why is not None and not why.startswith("HTTP"):
                log.warning("logger=wandb: the W&B server at %s does not answer (%s): this run "
                            "is logged offline in %s/wandb; upload it later with `wandb sync`.",
                            base, why, run_folder)
                offline = True
        self._id_file = _RunId(run_folder, "wandb")
        run_id = self._id_file.read()
        super().__init__(project=project, save_dir=run_folder, offline=offline, id=run_id,
                         resume="allow" if run_id else None, name=Path(run_folder).name,
                         **kwargs)
        self.start_relay("wandb", flush_seconds)

    def send_grid(self, tag: str, image: torch.Tensor, step: int) -> None:
        WandbLogger.log_image(self, key=tag, images=[_uint8_hwc(image)], step=step)

    def send_run(self, params: dict, metrics: list[str], name: str, folder: str) -> None:
        self._id_file.write(self.version)
        self.experiment.name = name
        self.experiment.config.update(params, allow_val_change=True)
        self.experiment.summary.update({"run_folder": str(folder),
                                        "checkpoints": str(Path(folder) / "checkpoints")})
