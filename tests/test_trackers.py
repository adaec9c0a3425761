"""logger=: the same scalars, sample grids, run record and final metrics reach TensorBoard, CSV,
MLflow (a real tracking server on 127.0.0.1, and local stores) and Weights & Biases (offline
run files); a resumed run continues its tracker's run."""

import contextlib
import csv
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from badinput import run_cli
from conftest import TINY, image_steps, kill_then_resume, run_ganrun, scalars

QUIET = {"WANDB_SILENT": "true", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}


def tiny_run(tmp_path, mnist_root, *extra, steps=4, run="run"):
    return run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      f"trainer.max_steps={steps}", "callbacks.scalars.every_n_iterations=1",
                      "callbacks.samples.every_n_iterations=2", f"hydra.run.dir={run}", *extra,
                      cwd=tmp_path, env=QUIET)


def same_points(got, expected) -> bool:
    """Two curves of (step, value): the same steps, values equal to float32 rounding."""
    got, expected = sorted(got), sorted(expected)
    return [s for s, _ in got] == [s for s, _ in expected] and \
        [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(mlflow_process):
    return mlflow_process[0]


@pytest.fixture
def mlflow_process(tmp_path):
    """``mlflow server`` on 127.0.0.1 with a SQLite backend and its own artifact folder:
    (its address, its process)."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError((tmp_path / "mlflow-server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield uri, proc
    # The server and its workers, at once: how it shuts down is not what the tests are about
    # (a graceful stop took 20 s here).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def mlflow_run(uri: str):
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("ganrun").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def check_mlflow(client, run, folder: Path) -> None:
    """What TensorBoard got, the MLflow run got: every loss/g point, the run record, the
    sample grids as images, the run folder as a tag."""
    expected = scalars(folder)["loss/g"]
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss/g")]
    assert same_points(history, expected)
    assert run.data.params["choice.dataset"] == "mnist" and run.data.params["model.latent_dim"] == "8"
    assert not [key for key in run.data.params if key.startswith(("logger.", "callbacks."))]
    assert run.data.tags["ganrun.run_folder"] == str(folder)
    assert run.data.tags["ganrun.checkpoints"] == str(folder / "checkpoints")
    assert "dataset=mnist" in run.data.tags["mlflow.runName"]
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    steps = sorted({int(p.split("+step+")[1].split("+")[0]) for p in images if p.endswith(".png")})
    assert steps == image_steps(folder) and run.info.status == "FINISHED"


def test_an_mlflow_server_killed_mid_run_loses_no_iteration(tmp_path, mnist_root,
                                                             mlflow_process):
    """The server dies at iteration 4 of 12: training goes on at full speed, says so once,
    saves its last checkpoint at 12, keeps every point in csv/metrics.csv, and ends 0."""
    uri, server = mlflow_process
    started = time.monotonic()
    tests = str(Path(__file__).parent)
    proc = run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      "trainer.max_steps=12", "callbacks.scalars.every_n_iterations=1",
                      "hydra.run.dir=run", "logger=mlflow", f"logger.mlflow.tracking_uri={uri}",
                      "+logger.mlflow.flush_seconds=2",
                      "+callbacks.kill._target_=trackerkill.KillAt",
                      f"+callbacks.kill.pid={server.pid}", "+callbacks.kill.at=4", cwd=tmp_path,
                      env={**QUIET, "PYTHONPATH": os.pathsep.join(
                          [tests, os.environ.get("PYTHONPATH", "")])})
    assert server.poll() is not None  # it did die, with its workers
    assert time.monotonic() - started < 120
    out = proc.stdout + proc.stderr
    assert out.count("logger=mlflow failed") == 1 and "Training goes on" in out
    assert "could not be delivered" in out and "Traceback" not in out
    import torch

    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["ganrun"]["iteration"] == 12
    with (tmp_path / "run" / "csv" / "metrics.csv").open() as f:
        steps = {int(float(row["step"])) for row in csv.DictReader(f) if row.get("loss/g")}
    assert steps == set(range(1, 13))


def test_an_mlflow_server_down_at_start_is_one_line_in_seconds(tmp_path, mnist_root):
    started = time.monotonic()
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "logger=mlflow", f"logger.mlflow.tracking_uri=http://127.0.0.1:{free_port()}",
                     "hydra.run.dir=run", cwd=tmp_path, env=QUIET)
    assert result.code == 2 and time.monotonic() - started < 60
    assert "no MLflow tracking server answers at http://127.0.0.1" in result.text
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("logger", ["mlflow", "csv"])
def test_a_tracker_store_that_cannot_be_written_is_named(logger, tmp_path, mnist_root):
    (tmp_path / "blocked").write_text("a file where a folder must be")
    where = ([f"logger.mlflow.tracking_uri=sqlite:///{tmp_path / 'blocked' / 'mlflow.db'}"]
             if logger == "mlflow" else [f"logger.csv.save_dir={tmp_path / 'blocked'}"])
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     f"logger={logger}", *where, "hydra.run.dir=run", cwd=tmp_path, env=QUIET)
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "cannot be written" in result.text and "blocked is a file" in result.text


def test_mlflow_server_gets_the_run_and_its_resumption(tmp_path, mnist_root, mlflow_server):
    args = ["logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={mlflow_server}"]
    tiny_run(tmp_path, mnist_root, *args)
    run_ganrun("train", "resume=true", "hydra.run.dir=run", "trainer.max_steps=6", cwd=tmp_path,
               env=QUIET)
    client, run = mlflow_run(mlflow_server)  # one run: the resumed one continued it
    check_mlflow(client, run, tmp_path / "run")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/g")] == \
        list(range(1, 7))


@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_mlflow_local_store(tmp_path, mnist_root, store):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}" if store == "sqlite" else \
        f"file:{tmp_path / 'mlruns'}"
    # MLflow 3 accepts a folder store only when told so.
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        tiny_run(tmp_path, mnist_root, "logger=[tensorboard,mlflow]",
                 f"logger.mlflow.tracking_uri={uri}")
        client, run = mlflow_run(uri)
        check_mlflow(client, run, tmp_path / "run")
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]


def wandb_records(folder: Path) -> list:
    """The records of an offline W&B run file (LevelDB log format: 32 KiB blocks of chunks,
    each with a 7-byte header; a 7-byte W&B header first)."""
    from wandb.proto import wandb_internal_pb2

    [path] = folder.glob("wandb/offline-run-*/run-*.wandb")
    data, pos, block, records, part = path.read_bytes(), 7, 32768, [], b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            break
        part += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(part)
            records.append(record)
            part = b""
    return records


def test_wandb_offline_run_files(tmp_path, mnist_root):
    tiny_run(tmp_path, mnist_root, "logger=[tensorboard,wandb]", "logger.wandb.offline=true")
    folder = tmp_path / "run"
    records = wandb_records(folder)
    kinds = [r.WhichOneof("record_type") for r in records]
    config = {item.key: json.loads(item.value_json)
              for r in records if r.HasField("config") for item in r.config.update}
    assert config["choice.dataset"] == "mnist" and config["model.latent_dim"] == 8
    assert not [key for key in config if key.startswith(("logger.", "callbacks."))]
    history = [{item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in r.history.item} for r in records if r.HasField("history")]
    losses = sorted((h["trainer/global_step"], h["loss/g"]) for h in history if "loss/g" in h)
    assert same_points(losses, scalars(folder)["loss/g"])
    grids = [h["trainer/global_step"] for h in history if "samples" in str(h.keys())]
    assert grids == image_steps(folder)
    summary = {item.key: json.loads(item.value_json)
               for r in records if r.HasField("summary") for item in r.summary.update if item.key}
    assert summary["run_folder"] == str(folder)
    names = [r.run.display_name for r in records if r.HasField("run")]
    assert "dataset=mnist" in names[-1] and "exit" in kinds
    assert len(list(folder.glob("wandb/offline-run-*/files/media/images/samples_*.png"))) == \
        len(image_steps(folder))


def test_csv_rows_continue_after_a_kill(tmp_path, mnist_root):
    args = [*TINY, "dataset=mnist", f"dataset.root={mnist_root}", "logger=[tensorboard,csv]",
            "callbacks.scalars.every_n_iterations=1",
            "callbacks.checkpoint.last_every_n_iterations=1"]
    run = tmp_path / "run"
    kill_then_resume(run, args, max_steps=12, cwd=tmp_path, at_least=3)
    with (run / "csv" / "metrics.csv").open() as f:
        steps = [int(float(row["step"])) for row in csv.DictReader(f) if row.get("loss/g")]
    assert steps == list(range(1, 13))  # rows after the restart point were dropped, none twice
    assert "choice.dataset: mnist" in (run / "csv" / "hparams.yaml").read_text()


@pytest.mark.parametrize("logger, package", [("mlflow", "mlflow"), ("wandb", "wandb")])
def test_missing_tracker_package_is_one_paragraph(tmp_path, mnist_root, monkeypatch, logger,
                                                  package):
    monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     f"logger=[tensorboard,{logger}]", cwd=tmp_path)
    assert result.code == 2 and "Traceback" not in result.text
    assert f"logger={logger} needs the {package} package, which is not installed" in result.text
    assert f"pip install 'ganrun[{logger}]'" in result.text


def test_an_unreachable_wandb_server_logs_offline_and_says_so(tmp_path, mnist_root):
    started = time.monotonic()
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "logger=wandb", "trainer.max_steps=2", "hydra.run.dir=run", cwd=tmp_path,
                     env={**QUIET, "WANDB_BASE_URL": f"http://127.0.0.1:{free_port()}",
                          "WANDB_API_KEY": "x" * 40, "WANDB_MODE": ""})
    assert result.code == 0, result.text[-2000:]
    assert time.monotonic() - started < 90
    assert "does not answer" in result.text and "logged offline" in result.text
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
