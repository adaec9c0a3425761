"""`debug=tiny`: a run of a few seconds on the CPU for any preset, with the sizes that fit its
model and task (conf/debug/), that the command line can still change."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from conftest import run_ganrun
from ganrun.config import config_dir

PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def select(cfg, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_gets_the_tiny_sizes_of_its_model_and_task(preset):
    cfg = composed(f"experiment={preset}", "debug=tiny")
    choices = cfg.hydra.runtime.choices
    assert (cfg.trainer.max_steps, cfg.dataset.batch_size) == (3, 8)
    assert cfg.hardware.accelerator == "cpu"
    sizes = config_dir() / "debug" / "model" / f"tiny_{choices.model}.yaml"
    assert sizes.is_file(), f"{preset} uses model={choices.model}, which has no tiny sizes"
    task_sizes = config_dir() / "debug" / "task" / f"tiny_{choices.task}.yaml"
    for file in [sizes] + [task_sizes] * task_sizes.is_file():
        for key, value in leaves(yaml.safe_load(file.read_text())):
            assert select(cfg, key) == value, (preset, key)


def test_the_command_line_still_wins_over_debug_tiny():
    cfg = composed("debug=tiny", "trainer.max_steps=5", "model.latent_dim=4", "hardware=auto")
    assert (cfg.trainer.max_steps, cfg.model.latent_dim, cfg.model.generator.width) == (5, 4, 8)
    assert cfg.hardware.accelerator == "auto"
    plain = composed()
    assert (plain.trainer.max_steps, plain.model.generator.width) == (5000, 64)


def test_debug_tiny_trains_on_fashion_mnist_and_records_only_the_groups_a_user_picks(
        fashion_root, tmp_path):
    run = tmp_path / "run"
    proc = run_ganrun("train", "debug=tiny", f"dataset.root={fashion_root}",
                      "dataset.download=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert "trainer.max_steps=3 reached" in proc.stderr + proc.stdout
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["iteration"] == 3
    choices = state["ganrun"]["choices"]
    assert choices["debug"] == "tiny" and not [g for g in choices if "@" in g or "/" in g]
    generator = sum(v.numel() for k, v in state["state_dict"].items() if k.startswith("task.nets.G."))
    assert 0 < generator < 50_000, generator  # the default width 64 has millions
    shown = run_ganrun("train", "debug=tiny", "--help", cwd=tmp_path).stdout
    in_use = shown.split("== Options in use")[1].split("== Config")[0]
    assert "debug:" in in_use and "None_" not in in_use and "@" not in in_use, in_use


def test_a_users_own_model_brings_its_tiny_sizes_in_its_config_dir():
    example = Path(__file__).resolve().parents[1] / "examples" / "custom_task" / "conf"
    cfg = composed(f"hydra.searchpath=[file://{example}]", "task=cogan", "model=cogan",
                   "debug=tiny")
    assert (cfg.model.latent_dim, cfg.model.generator.width) == (8, 8)
