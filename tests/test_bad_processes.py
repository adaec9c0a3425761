"""Bad inputs that need a process of their own: kills during training and sampling, and sweeps
whose jobs fail, with each launcher. Like the in-process battery (tests/badinput.py): the exit
code, no traceback, the message, and nothing changed outside the run and output folders."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import warm
from badinput import TINY_GEN, Sandbox
from conftest import TINY, run_ganrun, wait_for_iteration
from fakedata import write_mnist


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_mnist(root, n_train=64, n_test=16)
    return root


def tiny(mnist, *extra):
    return [*TINY_GEN, "dataset=mnist", f"dataset.root={mnist}", *extra]


def checked(box: Sandbox, proc_or_result, code: int, *messages: str) -> str:
    stderr = proc_or_result.stderr
    assert proc_or_result.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr and "HYDRA_FULL_ERROR" not in stderr, stderr[-3000:]
    text = " ".join(stderr.split())
    for message in messages:
        assert message in text, stderr[-3000:]
    return stderr


def as_from_a_terminal():
    """A shell starts a command with Ctrl-C's default action, whatever this worker's is."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(box, *args, cold: bool = False):
    """``ganrun ARGS`` in a process of its own: a warm one (tests/warm.py) unless the test is
    about what happens while Python imports (``cold``)."""
    popen = subprocess.Popen if cold else warm.popen
    command = [*([sys.executable] if cold else []), "-m", "ganrun", *map(str, args)]
    return popen(command, cwd=box.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                 text=True, env={**os.environ, **box.env}, preexec_fn=as_from_a_terminal)


def test_kill_sigterm_during_training_saves_and_resumes(tmp_path, mnist):
    box = Sandbox(tmp_path)
    before = box.snapshot()
    run = box.root / "runs" / "r"
    args = tiny(mnist, "trainer.max_steps=100000", f"hydra.run.dir={run}",
                "callbacks.checkpoint.last_every_n_iterations=1")
    proc = start(box, "train", *args)
    wait_for_iteration(run, proc, 2)
    proc.send_signal(signal.SIGTERM)
    proc.stderr_text = proc.communicate(timeout=120)[1]
    proc.stderr = proc.stderr_text
    checked(box, proc, 128 + signal.SIGTERM, "stopped by SIGTERM at iteration",
            "checkpoint saved", "resume=true")
    stopped = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["ganrun"]
    resumed = run_ganrun("train", "resume=true", f"hydra.run.dir={run}",
                         f"trainer.max_steps={stopped['iteration'] + 2}", cwd=box.work,
                         env=box.env)
    assert "Resuming from" in resumed.stdout + resumed.stderr
    assert box.snapshot() == before


def test_kill_sigkill_during_training_then_resume(tmp_path, mnist):
    box = Sandbox(tmp_path)
    before = box.snapshot()
    run = box.root / "runs" / "r"
    proc = start(box, "train", *tiny(mnist, "trainer.max_steps=100000", f"hydra.run.dir={run}",
                                     "callbacks.checkpoint.last_every_n_iterations=1"))
    wait_for_iteration(run, proc, 2)
    proc.kill()
    proc.wait()
    done = run_ganrun("train", "resume=true", f"hydra.run.dir={run}", "trainer.max_steps=40",
                      cwd=box.work, env=box.env)
    checked(box, done, 0)
    assert torch.load(run / "checkpoints" / "last.ckpt",
                      weights_only=True)["ganrun"]["iteration"] == 40
    assert box.snapshot() == before


def test_kill_ctrl_c_during_sampling(tmp_path, mnist):
    box = Sandbox(tmp_path)
    run = box.root / "runs" / "r"
    run_ganrun("train", *tiny(mnist, f"hydra.run.dir={run}"), cwd=box.work, env=box.env)
    before = box.snapshot()
    proc = start(box, "sample", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "num=200000",
                 f"out={box.out / 's'}", "batch_size=64")
    deadline = time.time() + 120
    while not any((box.out / "s").glob("sample_*.png")) and time.time() < deadline:
        time.sleep(0.05)
    assert any((box.out / "s").glob("sample_*.png")), "ganrun sample wrote nothing in 120 s"
    proc.send_signal(signal.SIGINT)
    proc.stderr = proc.communicate(timeout=180)[1]  # a loaded machine: the batch under way ends
    checked(box, proc, 130, "interrupted")
    for png in (box.out / "s").glob("sample_*.png"):  # every file under a final name is whole
        assert png.read_bytes().endswith(b"IEND\xaeB`\x82"), png
    assert box.snapshot() == before


def test_kill_during_start_up_leaves_nothing(tmp_path, mnist):
    box = Sandbox(tmp_path)
    before = box.snapshot()
    proc = start(box, "train", *tiny(mnist, "trainer.max_steps=100000", "hydra.run.dir=../runs/r"),
                 cold=True)
    time.sleep(1.0)  # still importing or building
    proc.send_signal(signal.SIGTERM)
    proc.stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert box.snapshot() == before


# Sweeps: every launcher reports failed jobs and exits 1.

LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
             "submitit": ["hydra/launcher=submitit_local"]}


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_sweep_reports_a_failed_job(tmp_path, mnist, launcher):
    box = Sandbox(tmp_path)
    before = box.snapshot()
    proc = run_ganrun("train", "-m", *tiny(mnist, "trainer.max_steps=2"),
                      "optimizer.lr=2e-4,-1", f"hydra.sweep.dir={box.root / 'runs' / 'sweep'}",
                      *LAUNCHERS[launcher], cwd=box.work, env=box.env, check=False)
    stderr = checked(box, proc, 1, "sweep finished: 1 of 2 jobs succeeded",
                     "learning rate must be positive")
    assert "job 1 failed (optimizer.lr=-1): " in " ".join(stderr.split())
    assert box.snapshot() == before


def test_parallel_sweep_counts_its_jobs(tmp_path, mnist):
    box = Sandbox(tmp_path)
    proc = run_ganrun("train", "-m", *tiny(mnist, "trainer.max_steps=2"), "seed=0,1",
                      f"hydra.sweep.dir={box.root / 'runs' / 'sweep'}", *LAUNCHERS["joblib"],
                      cwd=box.work, env=box.env, check=False)
    checked(box, proc, 0, "sweep finished: 2 of 2 jobs succeeded")


def test_sweep_with_a_misspelled_key_starts_no_job(tmp_path, mnist):
    box = Sandbox(tmp_path)
    before = box.snapshot()
    proc = run_ganrun("train", "-m", *tiny(mnist), "optimizer.lrr=1e-4,2e-4",
                      f"hydra.sweep.dir={box.root / 'runs' / 'sweep'}", cwd=box.work,
                      env=box.env, check=False)
    checked(box, proc, 2, "Did you mean `optimizer.lr`")
    assert not (box.root / "runs").exists()
    assert box.snapshot() == before


def test_concurrent_evaluations_compute_the_real_features_once(tmp_path, mnist, torch_home):
    """Two evaluations on an empty cache: the second waits for the first's lock and reads the
    features it cached, instead of computing them too."""
    box = Sandbox(tmp_path)
    run = box.root / "runs" / "r"
    run_ganrun("train", *tiny(mnist, f"hydra.run.dir={run}"), cwd=box.work, env=box.env)
    box.env["TORCH_HOME"] = str(torch_home)
    command = ["eval", f"ckpt={run / 'checkpoints' / 'last.ckpt'}", "metrics=fid",
               "num_samples=4", "metrics.real_samples=6"]
    procs = [start(box, *command) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[1] for proc in procs]
    for proc, stderr in zip(procs, outputs):
        assert proc.returncode == 0, stderr[-3000:]
    assert sum("Real features: computed" in text for text in outputs) == 1, outputs
    assert sum("Real features: cache hit" in text for text in outputs) == 1, outputs


@pytest.mark.parametrize("signals", [1, 2], ids=["one_signal", "two_signals"])
def test_a_signal_during_a_metrics_pass_stops_it_and_saves(signals, tmp_path, mnist_root):
    """Ctrl-C while the in-training metrics pass runs: acknowledged at once, the pass given up
    at its next batch, the checkpoint saved, exit 130; a second Ctrl-C still saves."""
    run, marker = tmp_path / "run", tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = warm.popen(
        ["-m", "ganrun", "train", *TINY, "dataset=mnist",
         f"dataset.root={mnist_root}", "trainer.max_steps=8", "metrics.every_n_iterations=4",
         "+metrics.evaluate.slow._target_=slowmetric.Slow", f"+metrics.evaluate.slow.marker={marker}",
         "callbacks.checkpoint.last_every_n_iterations=100", f"hydra.run.dir={run}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 180
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    started = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert time.monotonic() - started < 30  # 600 batches of 0.1 s were left: given up
    assert "SIGINT received: stopping" in err and "Traceback" not in err
    assert "given up for the stop signal" in out + err
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["iteration"] == 4 and not state["ganrun"]["metrics"]


def test_a_signal_while_a_stopped_run_exits_is_no_traceback(monkeypatch):
    """The second Ctrl-C of a double press can arrive after the run saved and tore down its
    callbacks, while the process exits: taken quietly, not a KeyboardInterrupt from whatever
    runs at exit; a third still quits at once."""
    from ganrun.callbacks.signals import GracefulStop

    stop, before = GracefulStop(), signal.getsignal(signal.SIGINT)
    stop._previous = {signal.SIGINT: before}  # as on_train_start leaves it
    try:
        stop._handle(signal.SIGINT, None)
        stop.teardown(None, None, "fit")
        handler = signal.getsignal(signal.SIGINT)
        try:
            handler(signal.SIGINT, None)  # the second
        except KeyboardInterrupt:  # what the default handler raises
            pytest.fail("a repeated signal while a stopped run exits raised KeyboardInterrupt")
        exits = []
        monkeypatch.setattr(os, "_exit", exits.append)
        handler(signal.SIGINT, None)  # the third
        assert exits == [128 + signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, before)
