"""Kill and resume: a run stopped by SIGTERM or SIGKILL and resumed logs exactly the losses of an
uninterrupted run with the same seed, on the same steps, with no duplicate points."""

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

import warm
from conftest import TINY, run_ganrun, scalars, wait_for_iteration
from fakedata import write_mnist
from ganrun.callbacks.checkpoint import IterationCheckpoint
from ganrun.errors import UserError

# 64 images in batches of 8: 8 iterations per epoch, so 12 iterations cross an epoch boundary.
STEPS = 12


def args(root, *extra):
    return ["train", *TINY, "dataset=mnist", f"dataset.root={root}", "seed=11",
            "callbacks.scalars.every_n_iterations=1",
            "callbacks.checkpoint.last_every_n_iterations=1", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, once for the module: its data are the same as every test's
    ``mnist_root`` (write_mnist is seeded)."""
    base = tmp_path_factory.mktemp("reference")
    write_mnist(base / "data", n_train=64, n_test=16)
    run = base / "reference"
    run_ganrun(*args(base / "data", f"trainer.max_steps={STEPS}", f"hydra.run.dir={run}"),
               cwd=base)
    return scalars(run)


def start(root, run, cwd):
    command = ["-m", "ganrun", *args(root, "trainer.max_steps=100000", f"hydra.run.dir={run}")]
    return warm.popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def resume(root, run, cwd):
    run_ganrun("train", "resume=true", f"trainer.max_steps={STEPS}", f"hydra.run.dir={run}",
               cwd=cwd)


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_saves_and_resume_is_exact(kill, reference, tmp_path, mnist_root):
    run = tmp_path / "run"
    proc = start(mnist_root, run, tmp_path)
    wait_for_iteration(run, proc, 2)
    proc.send_signal(kill)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + kill, stderr[-3000:]
    assert f"stopped by {kill.name}" in stderr and "resume=true" in stderr
    stopped_at = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert [s for s, _ in scalars(run)["loss/d"]][-1] == stopped_at["ganrun"]["iteration"]
    resume(mnist_root, run, tmp_path)
    assert scalars(run)["loss/d"] == reference["loss/d"]
    assert scalars(run)["loss/g"] == reference["loss/g"]


def test_sigkill_then_resume_is_exact_without_duplicate_points(reference, tmp_path, mnist_root):
    run = tmp_path / "run"
    proc = start(mnist_root, run, tmp_path)
    wait_for_iteration(run, proc, 3)
    proc.kill()
    proc.communicate(timeout=60)
    resume(mnist_root, run, tmp_path)
    logged = scalars(run)
    for tag in ("loss/d", "loss/g", "d/real", "d/fake"):
        assert [s for s, _ in logged[tag]] == list(range(1, STEPS + 1)), tag
        assert logged[tag] == reference[tag], tag


def test_resume_true_continues_the_newest_run_with_its_overrides(tmp_path, mnist_root):
    run_ganrun(*args(mnist_root, "model=mlp", "trainer.max_steps=2"), cwd=tmp_path)
    run_ganrun("train", "resume=true", "trainer.max_steps=4", cwd=tmp_path)
    (run,) = tmp_path.glob("outputs/*/*")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganrun"]["iteration"] == 4
    assert ckpt["ganrun"]["config"]["model"]["generator"]["_target_"].endswith("mlp.Generator")
    # A finished run resumed with the same length trains nothing and says how to go on.
    logged = scalars(run)["loss/g"]
    done = run_ganrun("train", "resume=true", "trainer.max_steps=4", cwd=tmp_path)
    assert "already reached iteration 4" in done.stdout + done.stderr
    assert scalars(run)["loss/g"] == logged
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganrun"]["iteration"] == 4


def test_resume_with_another_model_config_names_the_keys(tmp_path, mnist_root):
    run = tmp_path / "run"
    run_ganrun(*args(mnist_root, "trainer.max_steps=2", f"hydra.run.dir={run}"), cwd=tmp_path)
    proc = run_ganrun(*args(mnist_root, "model.generator.width=16", "trainer.max_steps=4",
                            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"),
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "model.generator.width is 8 in the checkpoint, 16 now" in proc.stderr


def test_nothing_to_resume_and_refusing_to_overwrite(tmp_path, mnist_root):
    run = tmp_path / "run"
    proc = run_ganrun(*args(mnist_root, "resume=true", f"hydra.run.dir={run}"), cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and "no checkpoint to resume" in proc.stderr
    run_ganrun(*args(mnist_root, "trainer.max_steps=2", f"hydra.run.dir={run}"), cwd=tmp_path)
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    proc = run_ganrun(*args(mnist_root, "resume=false", f"hydra.run.dir={run}"), cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and "would overwrite it" in proc.stderr
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before


class FailingTrainer:
    """Writes half a checkpoint, then fails like a full disk."""
    is_global_zero = True
    loggers = []

    def save_checkpoint(self, path, weights_only=False):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"the previous checkpoint")
    callback = IterationCheckpoint(dirpath=str(tmp_path))
    with pytest.raises(UserError, match="disk is full.*previous last.ckpt .*intact"):
        callback.save(FailingTrainer(), "last.ckpt")
    assert (tmp_path / "last.ckpt").read_bytes() == b"the previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_resume_from_the_last_batch_of_an_epoch_is_exact(reference, tmp_path, mnist_root):
    run = tmp_path / "run"
    run_ganrun(*args(mnist_root, "trainer.max_steps=8", f"hydra.run.dir={run}"), cwd=tmp_path)
    resume(mnist_root, run, tmp_path)
    assert scalars(run)["loss/d"] == reference["loss/d"]
    assert [v for _, v in scalars(run)["epoch"]] == [0] * 8 + [1] * 4


def test_resume_chain_through_epoch_ends_is_exact(tmp_path, mnist_root):
    # Resuming on an epoch's last batch used to leave Lightning's progress counters in a state
    # from which the next resume on an epoch's last batch repeated that epoch's data.
    def train(name, *extra):
        run_ganrun(*args(mnist_root, "trainer.max_steps=20", f"hydra.run.dir={tmp_path / name}",
                         "callbacks.checkpoint.every_n_iterations=4", *extra), cwd=tmp_path)
        return scalars(tmp_path / name)

    reference = train("reference")
    train("first", f"ckpt_path={tmp_path}/reference/checkpoints/iter_0000008.ckpt")
    second = train("second", f"ckpt_path={tmp_path}/first/checkpoints/iter_0000016.ckpt")
    assert second["loss/d"] == reference["loss/d"][16:]
    assert second["epoch"] == reference["epoch"][16:]


def test_stop_signal_during_start_up_exits_cleanly(tmp_path, mnist_root):
    command = ["-m", "ganrun",
               *args(mnist_root, "trainer.max_steps=100000", f"hydra.run.dir={tmp_path / 'run'}")]
    proc = warm.popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                      text=True)
    printed = ""
    while "Building the trainer" not in printed and proc.poll() is None:
        printed += proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    stderr = printed + proc.communicate(timeout=120)[1]
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr, stderr[-3000:]
    # Usually before the first batch; on a fast machine the first iteration may have run.
    assert "stopped by SIGTERM before training started; nothing to save" in stderr or \
        "checkpoint saved" in stderr


def test_a_resumed_runs_event_file_sorts_after_the_stopped_runs(tmp_path):
    """TensorBoard reads a folder's event files in name order, which begins with the second a
    file was opened: a run stopped and resumed within one second would otherwise have its
    resumed points purged as out of order (seen on a fast machine)."""
    import time

    from ganrun.loggers import TensorBoard

    now = int(time.time())
    (tmp_path / f"events.out.tfevents.{now}.host.999999.0").write_bytes(b"")
    logger = TensorBoard(str(tmp_path), resumed_at=7)
    logger.experiment.flush()
    names = sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))
    assert len(names) == 2 and names[0].endswith(".host.999999.0"), names
    assert int(names[1].split(".")[3]) > now
