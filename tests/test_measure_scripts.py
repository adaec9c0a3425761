"""The measurement scripts as a user runs them: `--protocol` composes the `ganrun train` and
`ganrun eval` commands of the protocol, and `--stage train` / `--stage eval` split a
measurement in two (e.g. train on a GPU now, measure once the FID weights are there)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    if str(SCRIPTS) not in sys.path:  # as `python scripts/<name>.py` has it: its helpers import
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=env)


@pytest.mark.parametrize("protocol, epochs, num_samples", [("full", 20, 10000),
                                                           ("short", 5, 5000)])
def test_protocol_composes_its_train_and_eval_commands(protocol, epochs, num_samples):
    measure = load_script("measure_presets")
    args = measure.parse_args(["--protocol", protocol, "--", "hardware=cpu"])
    run = Path("runs/dcgan_fashion_mnist")
    train = measure.train_command("dcgan_fashion_mnist", run, args)
    assert train[:2] == ["train", "experiment=dcgan_fashion_mnist"]
    assert f"trainer.max_epochs={epochs}" in train and "trainer.max_steps=null" in train
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
