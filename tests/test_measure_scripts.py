"""The measurement scripts as a user runs them: `--protocol` composes the `ganrun train` and
`ganrun eval` commands of the protocol, and `--stage train` / `--stage eval` split a
measurement in two (e.g. train on a GPU now, measure once the FID weights are there)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import warm

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    if str(SCRIPTS) not in sys.path:  # as `python scripts/<name>.py` has it: its helpers import
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args, cwd, env=None) -> subprocess.CompletedProcess:
    """``python scripts/NAME.py ARGS`` as a warm process: the runs it starts are warm too."""
    return warm.run([SCRIPTS / f"{name}.py", *args], cwd=cwd, capture_output=True, text=True,
                    timeout=600, env=env)


@pytest.mark.parametrize("protocol, length, num_samples", [
    ("full", ["trainer.max_epochs=20", "trainer.max_steps=null"], 10000),
    ("short", ["trainer.max_epochs=5", "trainer.max_steps=null"], 5000),
    ("studiogan", ["trainer.max_steps=100000", "trainer.max_epochs=null"], 10000)])
def test_protocol_composes_its_train_and_eval_commands(protocol, length, num_samples):
    measure = load_script("measure_presets")
    args = measure.parse_args(["--protocol", protocol, "--", "hardware=cpu"])
    run = Path("runs/dcgan_fashion_mnist")
    train = measure.train_command("dcgan_fashion_mnist", run, args)
    assert train[:2] == ["train", "experiment=dcgan_fashion_mnist"]
    assert set(length) <= set(train)
    assert train[-1] == "hardware=cpu"  # the user's overrides come last, so they win
    evaluate = measure.eval_command(run, "fid_kid_pr", args)
    assert f"num_samples={num_samples}" in evaluate
    assert not any(a.startswith("metrics.real_samples") for a in evaluate)  # all 10,000
    assert f"ckpt={run / 'checkpoints' / 'last.ckpt'}" in evaluate


def test_short_protocol_smoke_run_in_two_stages(tmp_path, fashion_root, with_torch_home):
    import os

    env = {**os.environ, "GANRUN_CACHE_DIR": str(tmp_path / "cache")}
    common = ["--protocol", "short", "--presets", "dcgan_fashion_mnist", "--root", fashion_root,
              "--max-steps", 2, "--num-samples", 40, "--real-samples", 40,
              "--out", tmp_path / "runs"]
    early = run_script("measure_presets", *common, "--stage", "eval", cwd=tmp_path, env=env)
    assert early.returncode != 0 and "holds no trained run" in early.stderr

    trained = run_script("measure_presets", *common, "--stage", "train", "--",
                         "hardware=cpu", "model.latent_dim=8", cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "measure it with --stage eval" in trained.stdout
    run = tmp_path / "runs" / "dcgan_fashion_mnist"
    assert not (run / "result.json").exists() and float((run / "train_seconds.txt").read_text()) > 0

    measured = run_script("measure_presets", *common, "--stage", "eval", cwd=tmp_path, env=env)
    assert measured.returncode == 0, measured.stderr[-3000:]
    result = json.loads((run / "result.json").read_text())
    assert result["protocol"] == "short" and result["num_samples"] == 40
    assert result["real_samples"] == 40 and result["fid"] > 0
    assert "| `dcgan_fashion_mnist` | short |" in measured.stdout

    # An evaluation cut off after its FID keeps it: measuring again does not evaluate again.
    assert json.loads((run / "evaluations.json").read_text())["fid"]["fid"] == result["fid"]
    (run / "result.json").unlink()
    measure = load_script("measure_presets")
    measure.evaluate = lambda *a: pytest.fail("evaluated again")
    args = measure.parse_args([str(a) for a in [*common, "--stage", "eval"]])
    assert measure.measure("dcgan_fashion_mnist", args)["fid"] == result["fid"]


def test_studiogan_protocol_runs_stylegan2_cifar10(tmp_path, with_torch_home):
    """The GPU user's command on a tiny CIFAR-10 folder: epochs are counted against the run's
    own training split (20 images here), not Fashion-MNIST's 60,000."""
    import os

    from fakedata import write_cifar

    write_cifar(tmp_path / "cifar")
    env = {**os.environ, "GANRUN_CACHE_DIR": str(tmp_path / "cache")}
    tiny = ["dataset.batch_size=4", "model.latent_dim=16", "model.generator.channel_base=256",
            "model.generator.channel_max=16", "model.discriminator.channel_base=256",
            "model.discriminator.channel_max=16", "model.discriminator.mbstd_group=4",
            "hardware=cpu"]
    measured = run_script("measure_presets", "--protocol", "studiogan", "--presets",
                          "stylegan2_cifar10", "--root", tmp_path / "cifar", "--max-steps", 5,
                          "--num-samples", 8, "--real-samples", 4, "--out", tmp_path / "runs",
                          "--", *tiny, cwd=tmp_path, env=env)
    assert measured.returncode == 0, measured.stderr[-3000:]
    result = json.loads((tmp_path / "runs" / "stylegan2_cifar10" / "result.json").read_text())
    assert result["protocol"] == "studiogan" and result["epochs"] == "1"  # 5 x 4 of 20 images
    assert "| `stylegan2_cifar10` | studiogan | 1 |" in measured.stdout


def test_rows_show_the_cas_of_labelled_presets_next_to_real_data():
    measure = load_script("measure_presets")
    result = {"protocol": "short", "epochs": "5", "fid": 30.04, "precision": 0.5, "recall": 0.4,
              "classes_covered": 10, "cas": 0.712, "cas_real": 0.851, "train_seconds": 600,
              "machine": "cpu"}
    assert measure.row("cgan_fashion_mnist", result) == (
        "| `cgan_fashion_mnist` | short | 5 | 30.0 | 0.50 | 0.40 | 10 | 71.2% (real 85.1%) | "
        "10.0 min | cpu |")
    for key in ("cas", "cas_real", "classes_covered"):
        del result[key]
    assert "| 0.40 | – | – | 10.0 min |" in measure.row("dcgan_fashion_mnist", result)


def test_a_run_evaluated_on_another_machine_names_both(tmp_path):
    measure = load_script("measure_presets")
    here = measure.machine()
    assert measure.machines(tmp_path) == here  # no record: trained where it is evaluated
    (tmp_path / "train_machine.txt").write_text(here + "\n")
    assert measure.machines(tmp_path) == here
    (tmp_path / "train_machine.txt").write_text("Intel Xeon x16, NVIDIA H200\n")
    assert measure.machines(tmp_path) == ("trained on Intel Xeon x16, NVIDIA H200; "
                                          f"evaluated on {here}")


def test_startup_bench_prints_both_medians_and_their_ratio(tmp_path, fashion_root):
    proc = warm.run([str(SCRIPTS / "bench_startup.py"), "--rounds", "1", "--data", fashion_root],
                    cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "baseline" in lines[1] and "handed over" in lines[2]
    assert lines[3].startswith("  ratio: ") and " s saved)" in lines[3]
