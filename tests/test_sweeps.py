"""Sweeps: `ganrun report`, `ganrun train -m`, the launcher presets (studies: test_tune.py)."""

import csv
import json
import math

import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

from conftest import TINY, hparams, hparams_summaries, run_ganrun, scalars
from ganrun.runner import jobstatus
from ganrun.config import config_dir
from ganrun.errors import UserError
from ganrun.commands.report import report


def composed(*overrides: str) -> dict:
    """The whole config, Hydra's part included, as `ganrun train ... --cfg all --resolve` shows."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        return OmegaConf.to_container(cfg)


def fake_job(sweep, num, overrides, fid=None, status="finished"):
    """A job folder as `ganrun train -m` leaves it, with the FID curve given (or none)."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    writer = SummaryWriter(str(job))
    for step in (1, 2, 3):
        writer.add_scalar("loss/g", 1.0 / step, step)
    for step, value in fid or []:
        writer.add_scalar("metrics/fid", value, step)
        writer.add_scalar("metrics/kid", value / 100, step)
    writer.close()
    jobstatus.write(job, "running")
    if status != "running":
        jobstatus.write(job, status)


def test_report_sorts_by_final_fid_and_writes_csv_md_png(tmp_path):
    sweep = tmp_path / "sweep"
    fake_job(sweep, 0, ["loss=bce", "optimizer.lr=1e-4"], fid=[(2, 90.0), (3, 80.0)])
    fake_job(sweep, 1, ["loss=hinge", "optimizer.lr=1e-4"], status="failed")
    fake_job(sweep, 2, ["loss=bce", "optimizer.lr=2e-4"], fid=[(2, 50.0), (3, 70.0)])
    fake_job(sweep, 3, ["loss=hinge", "optimizer.lr=2e-4"], fid=[(2, 10.0), (3, 60.0)],
             status="running")
    table = report(sweep)
    with (sweep / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == ["3", "2", "0", "1"]  # by final FID, no FID last
    assert [r["fid_final"] for r in rows][:3] == ["60.0", "70.0", "80.0"]
    assert [r["fid_best"] for r in rows][:3] == ["10.0", "50.0", "80.0"]
    assert rows[0]["kid_final"] == "0.6000000238418579"
    assert [r["status"] for r in rows] == ["running", "finished", "finished", "failed"]
    assert [r["iterations"] for r in rows] == ["3"] * 4
    record = jobstatus.read(sweep / "2")
    assert rows[3]["fid_final"] == "" and rows[1]["job"] == "2"
    assert float(rows[1]["wall_s"]) == pytest.approx(record["ended"] - record["started"])
    assert rows[0]["overrides"] == "loss=hinge optimizer.lr=2e-4"
    assert (sweep / "report.md").read_text().count("\n| ") == 5 and table.startswith("| job |")
    assert (sweep / "report.png").stat().st_size > 1000
    assert [round(float(r["loss_g_final"]), 6) for r in rows] == [0.333333] * 4  # next to FID
    assert table.splitlines()[0].startswith("| job | overrides | fid_final | fid_best | kid_final")
    assert "loss_g_final" in table.splitlines()[0]


def test_report_plot_compares_losses_only_within_one_loss(tmp_path):
    from ganrun.commands.report import SAME_LOSS_NOTE, plot, sort_rows, summarize

    sweep = tmp_path / "sweep"
    fake_job(sweep, 0, ["loss=bce", "optimizer.lr=1e-4"], fid=[(3, 80.0)])
    fake_job(sweep, 1, ["loss=hinge", "optimizer.lr=1e-4"], fid=[(3, 60.0)])
    fake_job(sweep, 2, ["loss=hinge", "optimizer.lr=2e-4"], fid=[(3, 70.0)])
    rows = sort_rows([summarize(job) for job in sorted(sweep.iterdir())])
    for row in rows:
        row["overrides"] = " ".join(row["all_overrides"])
    png, titles = plot(rows)
    assert png.startswith(b"\x89PNG")
    assert titles == ["metrics/fid per job", "final FID per loss", "final FID per optimizer.lr",
                      "losses of the loss=hinge jobs", "losses of the loss=bce jobs"]
    assert "compared only between jobs with the same loss" in SAME_LOSS_NOTE


def test_report_refuses_what_is_not_a_sweep(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        report(tmp_path / "nowhere")
    with pytest.raises(UserError, match="not a sweep folder"):
        report(tmp_path)
    (tmp_path / "multirun.yaml").write_text("{}")
    with pytest.raises(UserError, match="no job folders"):
        report(tmp_path)
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    with pytest.raises(UserError, match="single run"):
        report(tmp_path / "run")


def hparam_columns(run) -> tuple[list[str], str]:
    """The HParams tab's columns in their order, and the run's trial name."""
    start, experiment = hparams_summaries(run)
    return [info.name for info in experiment.hparam_infos], start.group_name


def test_2x2_multirun_then_report(tmp_path, mnist_root):
    proc = run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      "callbacks.scalars.every_n_iterations=1", "optimized_metric=loss/g",
                      "dataset.on_device=true", "trainer.channels_last=true",  # they train too
                      "trainer.keep_freed_memory=false",
                      "hydra.sweep.dir=sweep", "-m", "loss=bce,hinge", "optimizer.lr=1e-4,2e-4",
                      cwd=tmp_path)
    assert "see: ganrun report sweep" in proc.stderr
    sweep = tmp_path / "sweep"
    for num in range(4):
        status = json.loads((sweep / str(num) / "status.json").read_text())
        assert status["status"] == "finished" and status["wall_s"] > 0
        # the value a sweeper receives: the run's last loss/g
        assert math.isclose(status["objective"], scalars(sweep / str(num))["loss/g"][-1][1],
                            rel_tol=1e-5)
    params, tags = hparams(sweep / "3")  # what TensorBoard's HParams tab compares
    assert params["choice.loss"] == "hinge" and params["choice.model"] == "dcgan"
    assert params["optimizer.lr"] == 2e-4 and params["optimizer.generator.betas.0"] == 0.5
    assert isinstance(params["seed"], float) and params["model.latent_dim"] == 8
    assert not [key for key in params if "_target_" in key or "dirpath" in key or
                key.startswith(("callbacks", "paths", "dataset.root"))]
    assert {"loss/g", "loss/d"} <= set(tags)
    # The columns the HParams tab shows first are what tells the jobs apart, then the main
    # choices; the trial is named by its job and overrides, not a cut date/time path.
    columns, name = hparam_columns(sweep / "3")
    assert columns[:2] == ["choice.loss", "optimizer.lr"]
    assert columns.index("choice.task") < columns.index("choice.augment")
    assert name == "job 3: loss=hinge optimizer.lr=0.0002"  # as Hydra records the job
    proc = run_ganrun("report", sweep, cwd=tmp_path)
    assert proc.stdout.count("| finished |") == 4 and "| loss=hinge optimizer.lr=0.0002 |" in proc.stdout
    assert (sweep / "report.png").is_file() and (sweep / "report.csv").is_file()
    bad = run_ganrun("report", tmp_path / "missing", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def slurm_executor(launcher: dict, folder, monkeypatch):
    """The submitit executor that hydra's SlurmLauncher builds from its config (as in its
    launch()), parameters set and nothing submitted."""
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # no srun here
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    params = {k: v for k, v in launcher.items() if k not in ("_target_", "submitit_folder")}
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    return executor


def test_slurm_launcher_preset_gives_the_submission_parameters(tmp_path, monkeypatch):
    launcher = composed("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                        "hydra.launcher.gpus_per_node=2", "hydra.launcher.tasks_per_node=2",
                        "hydra.sweep.dir=sweep")["hydra"]["launcher"]
    launcher["submitit_folder"] = "sweep/.submitit/%j"  # ${hydra.sweep.dir} resolved as at launch
    assert launcher["_target_"].endswith("SlurmLauncher")
    executor = slurm_executor(launcher, tmp_path / "submitit", monkeypatch)
    script = executor._executor._make_submission_file_text("python -m ganrun train", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --ntasks-per-node=2", "#SBATCH --time=1440",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB", "@120"):
        assert line in script, (line, script)
    assert executor._executor.max_num_timeout == 5


def test_parallel_launcher_and_gpu_per_job_compose():
    cfg = composed("hydra/launcher=parallel", "hardware=gpu_per_job")
    assert cfg["hydra"]["launcher"]["_target_"].endswith("JoblibLauncher")
    assert cfg["hydra"]["launcher"]["n_jobs"] == 2
    assert cfg["hardware"]["devices"] == "${ganrun.job_gpu:}"


def test_gpu_per_job_picks_job_number_modulo_gpus(monkeypatch):
    import torch

    from ganrun.resolvers import job_gpu

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert job_gpu() == 1  # Lightning's GPU accelerator then says that there is none
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert job_gpu() == [0]  # outside a sweep


# ---- input pipeline and speed switches ----

def test_on_device_data_serves_batches_on_the_trainer_device(mnist_root):
    from types import SimpleNamespace

    import torch

    from ganrun.data import MNIST

    data = MNIST(root=str(mnist_root), download=False, batch_size=8, on_device=True)
    data.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("meta")),
                                   world_size=1)
    plain = MNIST(root=str(mnist_root), download=False, batch_size=8)
    images, labels = next(iter(data.train_dataloader()))
    assert images.device.type == "meta" and labels.device.type == "meta"
    assert images.shape == next(iter(plain.train_dataloader()))[0].shape
    # Where a resumed run starts, both serve the same batch.
    data.resume_at(epoch=1, batches=3)
    plain.resume_at(epoch=1, batches=3)
    data.trainer.strategy.root_device = torch.device("cpu")
    data.dataset = None
    assert torch.equal(next(iter(data.train_dataloader()))[0], next(iter(plain.train_dataloader()))[0])
    with pytest.raises(UserError, match="num_workers=0"):
        MNIST(root=str(mnist_root), on_device=True, num_workers=2)


def test_report_of_a_sweep_logged_to_csv_reads_its_curves(tmp_path, mnist_root):
    """logger=csv (and remote trackers, which keep csv/metrics.csv): FID and iterations in the
    report, as with TensorBoard's events."""
    from badinput import run_cli

    result = run_cli("train", "-m", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "logger=csv", "trainer.max_steps=4", "callbacks.scalars.every_n_iterations=1",
                     "metrics=modes", "metrics.every_n_iterations=2", "dataset=ring", "model=mlp",
                     "hydra.sweep.dir=sweep", "optimizer.lr=1e-4,2e-4", cwd=tmp_path)
    assert result.code == 0, result.text[-2000:]
    table = report(tmp_path / "sweep")
    assert not list((tmp_path / "sweep").glob("*/events.out.tfevents.*"))
    rows = [line for line in table.splitlines() if line.startswith("| 0 |") or
            line.startswith("| 1 |")]
    assert len(rows) == 2 and all("| 4 |" in row for row in rows), table


@pytest.mark.parametrize("mode, jobs", [("MULTIRUN", 1), ("RUN", 0)])
def test_hydra_mode_on_the_command_line_picks_a_sweep_or_a_run(mode, jobs, tmp_path, mnist_root):
    """`hydra.mode=MULTIRUN` sweeps without `-m`, as Hydra documents (ganrun reads the mode from
    the config it composed for its checks instead of letting Hydra 1.3 compose it again)."""
    proc = run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      "trainer.max_steps=1", f"hydra.mode={mode}", "seed=3",
                      "hydra.sweep.dir=sweep", "hydra.run.dir=run", cwd=tmp_path, process=True)
    assert sorted(p.name for p in (tmp_path / "sweep").glob("[0-9]*")) == \
        [str(n) for n in range(jobs)]
    assert (tmp_path / "run").is_dir() == (jobs == 0)
    assert ("see: ganrun report sweep" in proc.stderr) == (jobs > 0)
