"""trainer.compile and trainer.cuda_graphs: compiled networks train (torch.compile on the CPU
with AOTAutograd's tracing; inductor's C++ build takes minutes here, opt in with
GANRUN_TEST_COMPILE=1), and CUDA graphs fall back, saying why, wherever a condition fails."""

import os

import pytest
import torch

from badinput import run_cli
from conftest import TINY, scalars
from ganrun.runner.acceleration import graph_obstacle


def train(tmp_path, mnist_root, *extra):
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'run'}", *extra,
                     cwd=tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    return result


def test_compiled_networks_train_and_keep_their_checkpoint_names(tmp_path, mnist_root):
    result = train(tmp_path, mnist_root, "trainer.compile=true",
                   "trainer.compile_backend=aot_eager")
    assert [s for s, _ in scalars(tmp_path / "run")["loss/g"]] == [1, 2]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(k.startswith("task.nets.G.net.") for k in state["state_dict"])  # no _orig_mod
    assert "CUDA graphs" not in result.stdout + result.stderr


def test_cuda_graphs_fall_back_with_the_reason_on_a_cpu(tmp_path, mnist_root):
    result = train(tmp_path, mnist_root, "trainer.cuda_graphs=true")
    assert "trainer.cuda_graphs=true: training without CUDA graphs, because it trains on the " \
        "CPU" in " ".join((result.stdout + result.stderr).split())


def test_the_capture_conditions():
    assert graph_obstacle(cuda=True, drop_last=True, distributed=False, backend="inductor") is None
    assert "CUDA device" in graph_obstacle(False, True, False, "inductor")
    assert "drop_last" in graph_obstacle(True, False, False, "inductor")
    assert "DDP" in graph_obstacle(True, True, True, "inductor")
    assert "compile_backend=aot_eager" in graph_obstacle(True, True, False, "aot_eager")


@pytest.mark.skipif(os.environ.get("GANRUN_TEST_COMPILE") != "1", reason=(
    "inductor's C++ build on a CPU takes over a minute here; set GANRUN_TEST_COMPILE=1"))
def test_inductor_compile_trains(tmp_path, mnist_root):
    train(tmp_path, mnist_root, "model=mlp", "trainer.compile=true")
