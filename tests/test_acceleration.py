"""trainer.compile, trainer.cuda_graphs and the GPU paths a CPU can check.

- Compiled runs count what compiled, per compile unit (dynamo's graphs on each unit's calls,
  torch.compile with the eager/aot_eager backends: inductor's C++ build takes minutes here, opt
  in with GANRUN_TEST_COMPILE=1), in the run folder's acceleration.json; StyleGAN2's units are
  its generator's mapping and synthesis and its D.
- CUDA graphs fall back, saying why, wherever a condition fails, and the record says so.
- Every task is graph-safe: trained with the memory rule of inductor's CUDA graph trees played
  over its compile units (tests/graphtrees.py), it logs exactly what it logs without.
- StyleGAN2's penalties are fp32 under bf16 autocast.
- dataset.on_device=true indexes its batches with device tensors, never a Python list.
- Each phase is a named region for profilers.
"""

import json
import os

import pytest
import torch

from badinput import run_cli
from conftest import TINY, scalars
from fakedata import write_caption_folder, write_mnist
from ganrun.runner.acceleration import graph_obstacle
from task_contract import CONTRACTS, EXAMPLE


def train(tmp_path, mnist_root, *extra):
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'run'}", *extra,
                     cwd=tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    return result


def record(run) -> dict:
    return json.loads((run / "acceleration.json").read_text())


def test_compiled_networks_train_keep_their_checkpoint_names_and_count_their_graphs(
        tmp_path, mnist_root):
    result = train(tmp_path, mnist_root, "trainer.compile=true",
                   "trainer.compile_backend=aot_eager")
    assert [s for s, _ in scalars(tmp_path / "run")["loss/g"]] == [1, 2]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(k.startswith("task.nets.G.net.") for k in state["state_dict"])  # no _orig_mod
    assert "CUDA graphs" not in result.stdout + result.stderr
    done = record(tmp_path / "run")
    assert done["compiled"] and done["fallback"] is None and not done["cuda_graphs"]
    assert set(done["units"]) == {"G", "D"}
    for name, unit in done["units"].items():
        # G: the D phase's no-grad fakes and the G phase's; D: its own phase and G's.
        assert unit["calls"] >= 4 and unit["graphs"] >= 2 and unit["recompiles"] >= 1, name
    assert done["dynamo"]["frames_ok"] >= 4 and done["compile_s"] > 0


def test_stylegan2_compiles_its_generators_parts_and_d(tmp_path):
    write_mnist(tmp_path / "data", n_train=64, n_test=16)
    contract = CONTRACTS["stylegan2"]
    result = run_cli("train", *contract.train_args(tmp_path / "data"), "trainer.max_steps=1",
                     "trainer.compile=true", "trainer.compile_backend=eager",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    done = record(tmp_path / "run")
    assert set(done["units"]) == {"G.mapping", "G.synthesis", "D"}
    assert all(unit["graphs"] > 0 for unit in done["units"].values()), done["units"]
    assert done["compiled"] and done["fallback"] is None


def test_an_uncompiled_run_records_its_fp32_math(tmp_path, mnist_root):
    try:
        train(tmp_path, mnist_root, "trainer.tf32=true", "trainer.cudnn_benchmark=false")
        done = record(tmp_path / "run")
        assert done["math"] == {"tf32_matmul": True, "tf32_cudnn": True,
                                "cudnn_benchmark": False}
        assert not done["compiled"] and done["units"] == {} and done["fallback"] is None
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


def test_cuda_graphs_fall_back_with_the_reason_on_a_cpu(tmp_path, mnist_root):
    result = train(tmp_path, mnist_root, "trainer.cuda_graphs=true")
    assert "trainer.cuda_graphs=true: training without CUDA graphs, because it trains on the " \
        "CPU" in " ".join((result.stdout + result.stderr).split())
    done = record(tmp_path / "run")
    assert not done["cuda_graphs"] and not done["compiled"] and "CPU" in done["fallback"]


def test_the_capture_conditions():
    assert graph_obstacle(cuda=True, drop_last=True, distributed=False, backend="inductor") is None
    assert "CUDA device" in graph_obstacle(False, True, False, "inductor")
    assert "drop_last" in graph_obstacle(True, False, False, "inductor")
    assert "DDP" in graph_obstacle(True, True, True, "inductor")
    assert "compile_backend=aot_eager" in graph_obstacle(True, True, False, "aot_eager")


@pytest.mark.skipif(os.environ.get("GANRUN_TEST_COMPILE") != "1", reason=(
    "inductor's C++ build on a CPU takes over a minute here; set GANRUN_TEST_COMPILE=1"))
def test_inductor_compiles_every_unit(tmp_path, mnist_root):
    train(tmp_path, mnist_root, "model=mlp", "trainer.compile=true")
    done = record(tmp_path / "run")
    assert done["compiled"] and done["fallback"] is None
    assert all(unit["graphs"] > 0 for unit in done["units"].values()), done["units"]
    assert all(v == v for _, v in scalars(tmp_path / "run")["loss/g"])  # finite, not NaN


# ---- graph safety -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph_data")
    write_mnist(root, n_train=64, n_test=16)
    write_caption_folder(root / "captions")
    return root


def trained(task: str, root, folder, *extra) -> dict:
    result = run_cli("train", *CONTRACTS[task].train_args(root), "trainer.max_steps=3",
                     "callbacks.samples.every_n_iterations=2", f"hydra.run.dir={folder}",
                     *extra, cwd=folder.parent)
    assert result.code == 0, result.stderr[-3000:]
    return scalars(folder)


@pytest.mark.parametrize("task", list(CONTRACTS))
def test_every_task_is_graph_safe(task, root, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    plain = trained(task, root, tmp_path / "plain")
    trees = trained(task, root, tmp_path / "trees", "+callbacks.graphtrees._target_="
                    "graphtrees.GraphTrees", f"+callbacks.graphtrees.dirpath={tmp_path / 'trees'}")
    played = json.loads((tmp_path / "trees" / "graphtrees.json").read_text())
    assert played["steps"] >= 6  # new steps of the tree started, each overwriting what lived
    assert trees == plain


class Net(torch.nn.Linear):
    def __init__(self):
        super().__init__(2, 2)


def test_the_graph_tree_rule_overwrites_an_output_read_after_a_new_step(tmp_path):
    """The rule itself: a no-grad output read after another unit's call starts a new step
    reads overwritten memory (NaN through an alias, an error through the tensor); a copy made
    before that call survives; a pending backward holds the step."""
    from types import SimpleNamespace

    from graphtrees import MESSAGE, GraphTrees

    G, D = Net(), Net()
    rule = GraphTrees(str(tmp_path))
    task = SimpleNamespace(compile_units=lambda: {"G": G, "D": D})
    rule.on_train_start(None, SimpleNamespace(task=task))
    x = torch.ones(1, 2)
    with torch.no_grad():
        fake = G(x)
        alias, copy = fake.detach(), fake.clone()
        D(x)  # a new step: nothing held it back
    assert torch.isnan(alias).all() and not torch.isnan(copy).any()
    with pytest.raises(RuntimeError, match=MESSAGE):
        fake + 1
    with torch.no_grad():
        kept = G(x).detach()  # the output tensor dies, its memory lives on in the alias
    held = D(x)  # a new step; with grad, its backward is pending
    assert torch.isnan(kept).all()
    seen = held.detach()
    D(x)
    assert not torch.isnan(held).any()  # held back by the pending backward
    held.sum().backward()
    G(x)
    assert torch.isnan(seen).all()
    rule.on_train_end(None, None)
    played = json.loads((tmp_path / "graphtrees.json").read_text())
    assert played == {"steps": 5, "overwritten": 5}


# ---- penalties in fp32 ------------------------------------------------------------------------

def tiny_stylegan2():
    from ganrun.nets.stylegan2 import Discriminator, Generator
    from ganrun.tasks.stylegan2 import StyleGAN2
    from ganrun.training.losses import NonSaturating

    torch.manual_seed(0)
    G = Generator(latent_dim=8, channels=1, image_size=16, w_dim=8, mapping_layers=2,
                  channel_base=64, channel_max=8)
    D = Discriminator(channels=1, image_size=16, channel_base=64, channel_max=8, mbstd_group=2)
    return StyleGAN2(G, D, NonSaturating(), latent_dim=8)


def penalties(task, real: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)  # the path length's noise and latents, alike in every call
    task.pl_mean.zero_()
    return {"r1": task.r1_loss(real, None, 1)[0].detach(),
            "path_length": task.path_length_loss(torch.randn(4, 8), None, 1)[0].detach()}


def test_stylegan2_penalties_are_fp32_under_bf16_autocast():
    task = tiny_stylegan2()
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert task.discriminator(real).dtype == torch.bfloat16  # autocast does act on D
        mixed = penalties(task, real)
    fp32 = penalties(task, real)
    for name, value in fp32.items():
        # bf16 (8-bit mantissa) would move them by ~1e-2; fp32 runs agree to rounding.
        torch.testing.assert_close(mixed[name], value, rtol=1e-5, atol=1e-7, msg=name)


# ---- data held on the device ------------------------------------------------------------------

def batches(root, on_device: bool, epoch: int = 0, resume_batches: int = 0, spy=None):
    from ganrun.data import MNIST

    data = MNIST(root=str(root), download=False, batch_size=8, on_device=on_device)
    data.setup()
    if spy is not None:
        get = data.dataset.__getitems__
        data.dataset.__getitems__ = lambda indices: spy.append(indices) or get(indices)
    data.resume_at(epoch, resume_batches)
    torch.manual_seed(3)
    loader = data.train_dataloader()
    for sampler in (loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
        if hasattr(sampler, "set_epoch"):  # as Lightning does before each epoch
            sampler.set_epoch(epoch)
    return [images for images, _ in loader], len(loader)


def test_on_device_batches_are_index_tensors_on_the_device_in_the_host_order(mnist_root):
    spy = []
    on_device, count = batches(mnist_root, True, epoch=1, spy=spy)
    host, host_count = batches(mnist_root, False, epoch=1)
    assert count == host_count == 8 and len(on_device) == 8
    assert all(isinstance(i, torch.Tensor) and i.device == torch.device("cpu") and len(i) == 8
               for i in spy), [type(i) for i in spy]  # no Python list to copy to the device
    for mine, theirs in zip(on_device, host):
        assert torch.equal(mine, theirs)
    resumed, _ = batches(mnist_root, True, epoch=1, resume_batches=5)
    assert len(resumed) == 3 and all(torch.equal(a, b) for a, b in zip(resumed, host[5:]))


def test_on_device_data_trains_as_the_host_path_across_epochs(tmp_path, mnist_root):
    # 8 batches an epoch: 12 iterations cross into the second; the loader never draws from
    # the global RNG (the latents), so both paths log the same losses.
    runs = {}
    for on_device in ("false", "true"):
        run = tmp_path / on_device
        run.mkdir()
        train(run, mnist_root, "trainer.max_steps=12", "callbacks.scalars.every_n_iterations=1",
              f"dataset.on_device={on_device}", "seed=1")
        runs[on_device] = scalars(run / "run")
    assert len(runs["true"]["loss/g"]) == 12 and runs["true"] == runs["false"]


# ---- profiler regions -------------------------------------------------------------------------

def test_each_phase_is_a_named_profiler_region(tmp_path, mnist_root, monkeypatch):
    import contextlib

    from ganrun.runner import module

    names = []
    monkeypatch.setattr(module, "record_function",
                        lambda name: names.append(name) or contextlib.nullcontext())
    train(tmp_path, mnist_root)
    assert names[:4] == ["phase D: loss", "phase D: update", "phase G: loss", "phase G: update"]
    assert len(names) == 8  # two iterations
