"""The command line as a user meets it: help, config printing, and errors for bad input."""

import subprocess
import sys

import pytest
import yaml

from conftest import TINY, run_ganrun


def test_ganrun_help_lists_the_commands(tmp_path):
    out = run_ganrun("--help", cwd=tmp_path).stdout
    assert "train" in out and "usage: ganrun <command>" in out


def test_python_m_ganrun_cli_runs_the_command_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ganrun.cli", "--help"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: ganrun <command>" in proc.stdout


def test_unknown_command(tmp_path):
    proc = run_ganrun("trian", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "unknown command 'trian'" in proc.stderr and "train" in proc.stderr


def test_train_help_lists_groups_and_options(tmp_path):
    out = run_ganrun("train", "--help", cwd=tmp_path).stdout
    assert "ganrun train" in out
    for group, option in [("model", "dcgan"), ("model", "mlp"), ("loss", "hinge"),
                          ("dataset", "fashion_mnist"), ("optimizer", "rmsprop"),
                          ("hardware", "ddp"), ("experiment", "dcgan_fashion_mnist")]:
        assert f"{group}: " in out and option in out


def test_train_help_shows_the_options_in_use_and_what_is_off(tmp_path):
    out = run_ganrun("train", "--help", "ema=decay", cwd=tmp_path).stdout
    section = out.split("== Options in use")[1].split("== Config:")[0]
    lines = [" ".join(line.split()) for line in section.splitlines()]
    for line in ("model: dcgan", "loss: bce", "ema: decay", "regularizer: none (off)",
                 "augment: none (off)", "conditioning: none (off)"):
        assert line in lines, section


def test_cfg_job_prints_the_composed_config(tmp_path):
    out = run_ganrun("train", "model=mlp", "loss=hinge", "--cfg", "job", cwd=tmp_path).stdout
    assert "ganrun.nets.mlp.Generator" in out and "ganrun.training.losses.Hinge" in out
    comments = [" ".join(line.split()) for line in out.splitlines() if line.startswith("#")]
    assert "# model: mlp" in comments and "# loss: hinge" in comments
    assert "# ema: none (off)" in comments and "# regularizer: none (off)" in comments
    assert yaml.safe_load(out)["loss"]["_target_"] == "ganrun.training.losses.Hinge"  # still YAML
    assert not (tmp_path / "outputs").exists()


def test_eval_help_lists_only_what_eval_reads(tmp_path):
    out = run_ganrun("eval", "--help", cwd=tmp_path).stdout
    assert "metrics: all, cas, class_coverage, fid" in out and "(in use: fid)" in out
    for training_group in ("regularizer", "optimizer", "hardware", "loss:", "ema"):
        assert training_group not in out


def test_shell_completion(tmp_path):
    out = run_ganrun("train", "-sc", "install=bash", cwd=tmp_path).stdout
    assert "complete -o nospace -o default -F hydra_bash_completion" in out
    # What the installed script asks while the user types `ganrun train model=<TAB>`:
    line = "ganrun train model="
    out = run_ganrun("-sc", "query=bash", cwd=tmp_path,
                     env={"COMP_LINE": line, "COMP_POINT": str(len(line))}).stdout
    from ganrun.config import config_dir

    shipped = sorted(f"model={p.stem}" for p in (config_dir() / "model").glob("*.yaml"))
    assert out.split() == shipped and {"model=dcgan", "model=mlp", "model=sngan"} <= set(shipped)


def test_failed_start_keeps_a_folder_that_existed_before(tmp_path):
    (tmp_path / "mine").mkdir()
    proc = run_ganrun("train", *TINY, "optimizer.lr=-1", "hydra.run.dir=mine", cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and (tmp_path / "mine" / "status.json").is_file()


def test_gpu_asked_on_a_machine_without_one(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cpu_free = [a for a in TINY if not a.startswith("hardware=")]
    proc = run_ganrun("train", *cpu_free, "hardware=gpu", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "asks for a GPU (hardware.accelerator=gpu" in proc.stderr
    assert "this machine has none" in proc.stderr and "hardware=auto" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_typo_inside_a_user_yaml_is_caught(tmp_path):
    (tmp_path / "myconf" / "model").mkdir(parents=True)
    (tmp_path / "myconf" / "model" / "big.yaml").write_text(
        "latent_dim: 16\ngenerator:\n  _target_: ganrun.nets.dcgan.Generator\n  widht: 4\n"
        "discriminator:\n  _target_: ganrun.nets.dcgan.Discriminator\n")
    proc = run_ganrun("train", "--config-dir", tmp_path / "myconf", "model=big", cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2
    assert "Unknown key `model.generator.widht`" in proc.stderr


def test_debug_env_shows_the_traceback(tmp_path):
    proc = run_ganrun("train", *TINY, "optimizer.lr=-1", cwd=tmp_path, check=False,
                      env={"GANRUN_DEBUG": "1", "HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("args, key, guess", [
    (["lr=1e-3"], "lr", "optimizer.lr=1e-3"),
    (["trainer.max_step=300"], "trainer.max_step", "trainer.max_steps=300"),
    (["-m", "optimizer.lr=1e-4,2e-4", "trainer.max_step=3,4"], "trainer.max_step",
     "trainer.max_steps=3,4"),  # a sweep fails before its first job
])
def test_misspelled_command_line_key_says_did_you_mean(args, key, guess, tmp_path):
    proc = run_ganrun("train", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert f"`{key}` is not a key of the config" in proc.stderr
    assert f"Did you mean `{guess.split('=')[0]}`? Write `{guess}`" in proc.stderr
    assert "+" + key not in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_misspelled_eval_key_says_did_you_mean(tmp_path):
    proc = run_ganrun("eval", "num_sample=200", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Did you mean `num_samples`?" in proc.stderr


def test_help_of_every_command_loads_no_torch(tmp_path):
    """Start-up: --help (and a misspelled key) are answered before torch or Lightning load
    (measured: 0.1-2 s instead of 7-21 s on a loaded 2-core machine)."""
    code = """
import contextlib, io, sys
from ganrun.cli import COMMANDS, main
for command in COMMANDS:
    sys.argv = ["ganrun", command, "--help"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()
heavy = [m for m in ("torch", "pytorch_lightning", "torchvision", "matplotlib", "optuna",
                     "gradio", "mlflow", "wandb") if m in sys.modules]
print("HEAVY", heavy)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:] + proc.stderr[-2000:]


def test_a_torchvision_built_for_another_torch_is_one_clear_line(tmp_path, monkeypatch):
    """What pip left when it paired torch 2.13 with torchvision 0.28: importing torchvision
    raises RuntimeError: operator torchvision::nms does not exist."""
    import importlib

    from in_process import run_in_process

    real_import = importlib.import_module

    def broken(name, *args):
        if name == "ganrun.commands.sample":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    result = run_in_process("sample", "ckpt=model", cwd=tmp_path)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "is not a matching pair" in result.stderr and 'pip install "torch<2.15"' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
