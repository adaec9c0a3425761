"""`ganrun train` end to end: outputs, logged tags, sweeps, DDP, bf16, resume, seeding."""

import json
import platform
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import TINY, hparams, image_steps, run_ganrun, scalars
from fakedata import write_celeba, write_cifar, write_image_folder

TAGS = {"loss/d", "loss/g", "d/real", "d/fake"}


def mnist_args(root, *extra):
    return ["train", *TINY, "dataset=mnist", f"dataset.root={root}", *extra]


def test_real_fashion_mnist_run_writes_tags_samples_and_checkpoint(tmp_path, fashion_root):
    run = tmp_path / "run"
    proc = run_ganrun("train", *TINY, "trainer.max_steps=12", f"dataset.root={fashion_root}",
                      "dataset.batch_size=32", f"hydra.run.dir={run}",
                      "callbacks.scalars.every_n_iterations=4",
                      "callbacks.samples.every_n_iterations=5", cwd=tmp_path)
    logged = scalars(run)
    assert TAGS <= set(logged)
    assert [step for step, _ in logged["loss/g"]] == [1, 4, 8, 12]
    assert all(torch.isfinite(torch.tensor([v for _, v in logged[t]])).all() for t in TAGS)
    assert "hp_metric" not in logged
    assert image_steps(run) == [1, 5, 10, 12]
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_0000001.png", "step_0000005.png", "step_0000010.png", "step_0000012.png"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["trainer"]["max_steps"] == 12
    assert "img/s" in proc.stderr and "iter 12/12" in proc.stderr


def test_default_outputs_layout(tmp_path, mnist_root):
    run_ganrun(*mnist_args(mnist_root), cwd=tmp_path)
    (run,) = tmp_path.glob("outputs/*-*-*/*-*-*")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list(run.glob("events.out.tfevents.*")) and list((run / "samples").glob("*.png"))


def test_every_model_and_loss_trains(tmp_path, mnist_root):
    run_ganrun(*mnist_args(mnist_root, "-m", "model=dcgan,mlp", "loss=bce,minimax,lsgan,hinge",
                           "callbacks.scalars.every_n_iterations=50", "hydra.sweep.dir=sweep"),
               cwd=tmp_path)
    jobs = sorted((tmp_path / "sweep").glob("[0-9]*"), key=lambda p: int(p.name))
    assert len(jobs) == 8
    for job in jobs:
        logged = scalars(job)
        assert TAGS <= set(logged), job
        assert [step for step, _ in logged["loss/g"]] == [1, 3]  # the first and the last
        assert (job / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("dataset, writer, extra", [
    ("cifar10", write_cifar, []),
    ("celeba", write_celeba, ["dataset.num_workers=0", "dataset.image_size=32"]),
    ("image_folder", write_image_folder, ["dataset.num_workers=0", "dataset.image_size=28",
                                          "dataset.channels=1"]),
])
def test_every_dataset_trains(dataset, writer, extra, tmp_path):
    writer(tmp_path / "data")
    run = tmp_path / "run"
    run_ganrun("train", *TINY, f"dataset={dataset}", f"dataset.root={tmp_path / 'data'}",
               "dataset.batch_size=2", "dataset.download=false", *extra,
               f"hydra.run.dir={run}", cwd=tmp_path)
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_multirun_gives_one_run_per_job(tmp_path, mnist_root):
    run_ganrun(*mnist_args(mnist_root, "-m", "optimizer=adam,rmsprop"), cwd=tmp_path)
    (sweep,) = tmp_path.glob("outputs/multirun/*/*")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job in jobs:
        overrides = yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text())
        assert f"optimizer={['adam', 'rmsprop'][int(job)]}" in overrides
        assert TAGS <= set(scalars(sweep / job))


def test_n_critic_counts_iterations_not_optimizer_steps(tmp_path, mnist_root):
    run = tmp_path / "run"
    run_ganrun(*mnist_args(mnist_root, "trainer.n_critic=3", "trainer.max_steps=4",
                           "callbacks.scalars.every_n_iterations=1", f"hydra.run.dir={run}"),
               cwd=tmp_path)
    assert [s for s, _ in scalars(run)["loss/g"]] == [1, 2, 3, 4]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganrun"]["iteration"] == 4 and ckpt["ganrun"]["counters"]["D"] == 12


def test_max_epochs_ends_the_run(tmp_path, mnist_root):
    run = tmp_path / "run"
    # 64 images / batch 8 = 8 iterations per epoch
    run_ganrun(*mnist_args(mnist_root, "trainer.max_steps=null", "trainer.max_epochs=2",
                           f"hydra.run.dir={run}"), cwd=tmp_path)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganrun"]["iteration"] == 16


def test_same_seed_same_losses(tmp_path, mnist_root):
    losses = []
    for name in ("a", "b"):
        run_ganrun(*mnist_args(mnist_root, "seed=7", "trainer.max_steps=5",
                               "callbacks.scalars.every_n_iterations=1",
                               f"hydra.run.dir={tmp_path / name}"), cwd=tmp_path)
        losses.append(scalars(tmp_path / name)["loss/d"])
    assert losses[0] == losses[1]
    assert len(set(v for _, v in losses[0])) == 5  # the values move: not a constant


def test_unseeded_runs_draw_and_record_their_own_seed(tmp_path, mnist_root):
    seeds, losses = [], []
    for name in ("a", "b"):
        run = tmp_path / name
        proc = run_ganrun(*mnist_args(mnist_root, "callbacks.scalars.every_n_iterations=1",
                                      f"hydra.run.dir={run}"), cwd=tmp_path)
        seed = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["seed"]
        assert isinstance(seed, int) and f"Seed: {seed} (drawn; seed={seed} repeats" in proc.stdout
        ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
        assert ckpt["ganrun"]["config"]["seed"] == seed and hparams(run)[0]["seed"] == seed
        seeds.append(seed)
        losses.append(scalars(run)["loss/d"])
    assert seeds[0] != seeds[1] and losses[0] != losses[1]
    # Resumed without a seed, the run goes on with the one it drew.
    proc = run_ganrun(*mnist_args(mnist_root, "trainer.max_steps=4", "resume=true",
                                  f"hydra.run.dir={tmp_path / 'a'}"), cwd=tmp_path)
    assert f"Seed: {seeds[0]} (from the checkpoint)" in proc.stdout
    assert yaml.safe_load((tmp_path / "a" / ".hydra" / "config.yaml").read_text())["seed"] == seeds[0]


def test_ranks_started_apart_draw_the_same_seed(monkeypatch):
    from ganrun.runner.seed import run_seed

    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun or srun start each rank
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert run_seed(None, None) == run_seed(None, None)
    assert run_seed(None, 5) == (5, "checkpoint") and run_seed(3, 5) == (3, "given")


def test_resume_continues_from_the_saved_iteration(tmp_path, mnist_root):
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["seed=3", "callbacks.scalars.every_n_iterations=1"]
    run_ganrun(*mnist_args(mnist_root, *common, "trainer.max_steps=4", f"hydra.run.dir={first}"),
               cwd=tmp_path)
    ckpt_path = first / "checkpoints" / "last.ckpt"
    before = torch.load(ckpt_path, weights_only=True)
    run_ganrun(*mnist_args(mnist_root, *common, "trainer.max_steps=7", f"ckpt_path={ckpt_path}",
                           f"hydra.run.dir={second}"), cwd=tmp_path)
    assert [s for s, _ in scalars(second)["loss/g"]] == [5, 6, 7]
    after = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["ganrun"]["iteration"] == 7
    assert torch.equal(before["state_dict"]["task.fixed_z"], after["state_dict"]["task.fixed_z"])
    # Both optimizers came back and kept stepping (Adam's step counts go on from 4).
    steps = [s["state"][0]["step"].item() for s in after["optimizer_states"]]
    assert steps == [7, 7]


LOSSES = ["bce", "minimax", "lsgan", "hinge", "wasserstein", "wgan_gp", "ragan"]


def test_bf16_on_cpu_trains_every_loss(tmp_path, mnist_root):
    run_ganrun(*mnist_args(mnist_root, "hardware=[cpu,bf16]", "-m", f"loss={','.join(LOSSES)}",
                           "hydra.sweep.dir=sweep"), cwd=tmp_path)
    for job in range(len(LOSSES)):
        run = tmp_path / "sweep" / str(job)
        config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
        assert config["hardware"]["precision"] == "bf16-mixed"
        for tag in ("loss/d", "loss/g"):
            assert torch.isfinite(torch.tensor([v for _, v in scalars(run)[tag]])).all(), job


def test_ddp_inside_a_sweep_is_refused(tmp_path, mnist_root):
    proc = run_ganrun(*mnist_args(mnist_root, "-m", "hardware=ddp", "hardware.accelerator=cpu",
                                  "hardware.devices=2", "seed=1,2"), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "cannot run inside a -m/--multirun sweep" in proc.stderr


def test_user_config_dir_adds_an_option(tmp_path, mnist_root):
    (tmp_path / "myconf" / "loss").mkdir(parents=True)
    (tmp_path / "myconf" / "loss" / "my_hinge.yaml").write_text(
        "_target_: ganrun.training.losses.Hinge\n")
    run = tmp_path / "run"
    run_ganrun(*mnist_args(mnist_root, "loss=my_hinge", f"hydra.run.dir={run}"),
               "--config-dir", tmp_path / "myconf", cwd=tmp_path)
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert config["loss"]["_target_"] == "ganrun.training.losses.Hinge"
    assert json.loads(json.dumps(config)) == config  # the composed config is plain data


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning is glibc-only")
def test_malloc_keeps_freed_memory_on_glibc():
    # In a child process: the setting cannot be undone and must not leak into other tests.
    code = "from ganrun.runner.allocator import keep_freed_memory; assert keep_freed_memory()"
    subprocess.run([sys.executable, "-c", code], check=True)
