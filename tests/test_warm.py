"""A warm process (tests/warm.py) looks to the command it runs like a new interpreter: the same
probe run both ways reports the same, and ends the same way."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import warm

PROBE = textwrap.dedent("""
    import atexit, json, os, signal, sys, threading, time
    import __main__
    preloaded = "torch" in sys.modules
    mode = sys.argv[1]
    atexit.register(lambda: print("atexit ran", flush=True))
    def inherited():
        def open_(fd):
            try:
                return os.get_inheritable(fd)
            except OSError:
                return False
        return sorted(fd for fd in map(int, os.listdir("/proc/self/fd")) if open_(fd))
    if mode == "report":
        import numpy, torch
        print(json.dumps({
            "cwd": os.getcwd(), "argv": sys.argv, "path": sys.path[:2],
            "main": getattr(__main__.__spec__, "name", None), "env": os.environ.get("PROBE_VALUE"),
            "threads": torch.get_num_threads(), "draw": numpy.random.randint(1 << 30),
            "sigint": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
            "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
            "stdin": sys.stdin.read(), "leader": os.getsid(0) == os.getpid(),
            "preloaded": preloaded, "fds": inherited(),
            "probe_loaded_fresh": "probe" not in sys.modules or __name__ == "__main__"}))
    elif mode == "code":
        sys.exit(int(sys.argv[2]))
    elif mode == "message":
        sys.exit("a message for the user")
    elif mode == "raise":
        raise ValueError("planted")
    elif mode == "interrupt":
        raise KeyboardInterrupt
    elif mode == "thread":
        threading.Thread(target=lambda: (time.sleep(0.5), print("thread done", flush=True))).start()
    elif mode == "yaml":
        import yaml
        print(yaml.__file__)
    elif mode == "wait":
        print("waiting", os.getpid(), flush=True)
        time.sleep(60)
""")


@pytest.fixture
def probe(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "probe.py").write_text(PROBE)
    (tmp_path / "work").mkdir()
    return tmp_path


def as_from_a_shell() -> None:
    """What an interactive shell gives a command, and a warm process starts with: SIGINT and
    SIGQUIT at their defaults, even where this suite was started with them ignored (a background
    job of a script)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def both(probe, *args, env=None, script=False, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(probe / "lib"), "PROBE_VALUE": "42", **(env or {})}
    common = dict(cwd=probe / "work", env=env, capture_output=True, text=True, timeout=120)
    command = [str(probe / "lib" / "probe.py")] if script else ["-m", "probe"]
    cold = subprocess.run([sys.executable, *command, *args], **common, **kwargs,
                          preexec_fn=as_from_a_shell)
    hot = warm.run([*command, *args], **common, **kwargs)
    return cold, hot


def test_a_script_sees_what_a_new_interpreter_sees(probe):
    cold, hot = both(probe, "report", script=True)
    cold_report, hot_report = (json.loads(p.stdout.splitlines()[0]) for p in (cold, hot))
    assert cold_report.pop("draw") != hot_report.pop("draw")
    assert (cold_report.pop("preloaded"), hot_report.pop("preloaded")) == (False, True)
    assert hot_report == cold_report
    assert hot_report["path"] == [str(probe / "lib")] * 2 and hot_report["main"] is None
    assert hot_report["argv"] == [str(probe / "lib" / "probe.py"), "report"]


def test_a_warm_process_sees_what_a_new_interpreter_sees(probe):
    cold, hot = both(probe, "report", env={"OMP_NUM_THREADS": "1"})
    (cold_report, cold_end), (hot_report, hot_end) = (p.stdout.splitlines() for p in (cold, hot))
    cold_report, hot_report = json.loads(cold_report), json.loads(hot_report)
    assert cold_report.pop("draw") != hot_report.pop("draw")  # NumPy seeded anew
    assert (cold_report.pop("preloaded"), hot_report.pop("preloaded")) == (False, True)
    cold_report["argv"][0] = os.path.realpath(cold_report["argv"][0])
    hot_report["argv"][0] = os.path.realpath(hot_report["argv"][0])
    assert hot_report == cold_report
    assert hot_report["cwd"] == str(probe / "work") and hot_report["env"] == "42"
    assert hot_report["path"] == [str(probe / "work"), str(probe / "lib")]
    assert hot_report["sigint"] and hot_report["sigterm"] and hot_report["threads"] == 1
    assert hot_end == cold_end == "atexit ran"
    assert (hot.returncode, hot.stderr) == (cold.returncode, cold.stderr) == (0, "")


def test_a_package_imported_ahead_comes_from_pythonpath_when_it_is_there(probe):
    """A warm process with a PYTHONPATH folder that holds one of the packages the server imports
    ahead (yaml here, hydra-core 1.4 for the Hydra 1.4 line) gets them from that folder."""
    import yaml

    (probe / "shadow").mkdir()
    (probe / "shadow" / "yaml").symlink_to(os.path.dirname(yaml.__file__))
    cold, hot = both(probe, "yaml", env={
        "PYTHONPATH": os.pathsep.join([str(probe / "shadow"), str(probe / "lib")])})
    assert hot.stdout == cold.stdout == f"{probe / 'shadow' / 'yaml' / '__init__.py'}\natexit ran\n"


def test_two_warm_processes_draw_different_numpy_seeds(probe):
    draws = {json.loads(warm.run(["-m", "probe", "report"], cwd=probe / "work", capture_output=True,
                                 text=True, env={**os.environ, "PYTHONPATH": str(probe / "lib")})
                        .stdout.splitlines()[0])["draw"] for _ in range(2)}
    assert len(draws) == 2


@pytest.mark.parametrize("args, code, stderr", [
    (["code", "3"], 3, None),
    (["message"], 1, "a message for the user"),
    (["raise"], 1, "ValueError: planted"),
    (["interrupt"], -signal.SIGINT, "KeyboardInterrupt"),
])
def test_a_warm_process_ends_as_a_new_interpreter_does(probe, args, code, stderr):
    cold, hot = both(probe, *args)
    assert hot.returncode == cold.returncode == code
    assert hot.stdout == cold.stdout == "atexit ran\n"
    if stderr:
        assert stderr in hot.stderr and stderr in cold.stderr
        assert hot.stderr.count("Traceback") == cold.stderr.count("Traceback")


def test_threads_are_joined_before_atexit(probe):
    cold, hot = both(probe, "thread")
    assert hot.stdout == cold.stdout == "thread done\natexit ran\n"


def test_signals_reach_the_process_and_a_new_session_is_its_own(probe):
    env = {**os.environ, "PYTHONPATH": str(probe / "lib")}
    proc = warm.Popen(["-m", "probe", "wait"], cwd=probe / "work", env=env, stdout=warm.PIPE,
                      stderr=warm.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline() == f"waiting {proc.pid}\n" and proc.poll() is None
    assert os.getsid(proc.pid) == proc.pid
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
    proc.send_signal(signal.SIGTERM)  # after the end: nothing to signal, as in subprocess
    report = warm.run(["-m", "probe", "report"], cwd=probe / "work", env=env,
                      capture_output=True, text=True).stdout.splitlines()[0]
    assert json.loads(report)["leader"] is False


# A program that starts `python -m probe` as tune starts its trials (its own session, SIGTERM
# when the parent dies, a descriptor passed on) or as Lightning starts a DDP rank (same group).
LAUNCHER = textwrap.dedent("""
    import ctypes, os, signal, subprocess, sys, time
    how, args = sys.argv[1], sys.argv[2:]
    read, write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", *args], pass_fds=[write],
        start_new_session=how == "session",
        preexec_fn=lambda: ctypes.CDLL(None).prctl(1, signal.SIGTERM))
    os.close(write)
    print("launched", proc.pid, flush=True)
    print("ended", proc.wait(), flush=True)
""")


def launch(probe, cold: bool, how: str, *args):
    (probe / "lib" / "launcher.py").write_text(LAUNCHER)
    env = {**os.environ, "PYTHONPATH": str(probe / "lib"),
           "GANRUN_TEST_WARM_PACKAGES": "ganrun,probe", "PROBE_VALUE": "42"}
    command = ["-m", "launcher", how, *args]
    common = dict(cwd=probe / "work", env=env, stdout=subprocess.PIPE, text=True,
                  start_new_session=True)
    if cold:
        return subprocess.Popen([sys.executable, *command], **common, preexec_fn=as_from_a_shell)
    return warm.Popen(command, **common)


def gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("cold", [True, False], ids=["cold", "warm"])
def test_python_started_from_a_process_reports_like_a_new_interpreter(probe, cold):
    proc = launch(probe, cold, "session", "report")
    out, _ = proc.communicate(timeout=120)
    lines = out.splitlines()
    report = json.loads(lines[1])
    assert report["preloaded"] is not cold  # the second process is warm too
    assert report["fds"] == [0, 1, 2, 4]  # the launcher's pipe, at the same number
    assert report["leader"] and report["env"] == "42" and report["cwd"] == str(probe / "work")
    assert report["path"] == [str(probe / "work"), str(probe / "lib")]
    assert report["argv"][1:] == ["report"] and report["sigint"] and report["sigterm"]
    assert lines[-1] == "ended 0" and proc.returncode == 0


@pytest.mark.parametrize("cold", [True, False], ids=["cold", "warm"])
@pytest.mark.parametrize("how", ["sigterm", "parent killed", "group killed"])
def test_python_started_from_a_process_ends_as_a_new_interpreter_does(probe, cold, how):
    """SIGTERM to the child reaches it; SIGKILL to its parent sends it SIGTERM (the parent-death
    signal); SIGKILL to a group it shares with its parent ends it."""
    proc = launch(probe, cold, "group" if how == "group killed" else "session", "wait")
    launched = int(proc.stdout.readline().split()[1])
    line = proc.stdout.readline().split()
    assert line[0] == "waiting"
    child = int(line[1])
    assert (child == launched) is cold  # warm: the real process is behind a stand-in
    if how == "sigterm":
        os.kill(launched, signal.SIGTERM)
        assert proc.stdout.readline() == f"ended {-signal.SIGTERM}\n"
        assert proc.wait(30) == 0
    elif how == "parent killed":
        proc.kill()
        assert proc.wait(30) == -signal.SIGKILL
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert gone(child)
