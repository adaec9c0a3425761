"""``python -m MODULE ARGS`` (or ``python SCRIPT.py ARGS``) as a process of its own that does not pay for importing torch,
Lightning, torchmetrics and Hydra again (7 s on a quiet 2-core machine, 15 s under the suite's
load): a server per pytest worker imports them once and forks a process per command.

For the tests whose subject is the process (signals, kills, DDP's first rank, sweeps, studies, the
demo's server). The forked process is made to look like a new interpreter: its own pid (and
session if asked), the command's working folder, environment, ``sys.path`` (the folder, then
``PYTHONPATH``; a script's folder instead of the working folder), ``sys.argv`` and
``__main__`` as ``-m`` (or a script) sets them, Python's start-up signal
handlers, a fresh NumPy seed, its threads count from ``OMP_NUM_THREADS``, and at the end what an
interpreter does on exit (non-daemon threads joined, atexit run, an uncaught Ctrl-C re-raised as
SIGINT). Only third-party packages are imported ahead; ganrun and the tests' modules are imported
by each command, as in a new process. ``GANRUN_TEST_COLD=1`` starts real interpreters instead.

Inside a warm process ``sys.executable`` is a stand-in interpreter (``python`` in the server's
folder): ``python -m ganrun ...`` started from there (tune's trials, Lightning's second DDP rank,
the measurement scripts' runs; also ``python -m joblib...``, the parallel sweep launcher's
workers) is forked from the same server, with the starter's folder,
environment and open file descriptors (same numbers), a session of its own if the stand-in leads
one, and the stand-in passes on the signals it gets and ends as the process ends; if the stand-in
is killed outright, so is the process. Any other command line runs the real interpreter.

Usage mirrors ``subprocess``: ``warm.Popen(["-m", "ganrun", "train", ...], cwd=..., env=...,
stdout=PIPE, stderr=PIPE, text=True)`` and ``warm.run(...)``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from subprocess import DEVNULL, PIPE, STDOUT, CompletedProcess, TimeoutExpired

__all__ = ["DEVNULL", "PIPE", "STDOUT", "Popen", "run"]

PRELOADED = ("numpy", "torch", "torchvision", "torchmetrics", "pytorch_lightning", "hydra",
             "omegaconf", "PIL.Image", "torch.utils.tensorboard", "yaml")


def cold() -> bool:
    return os.environ.get("GANRUN_TEST_COLD", "") not in ("", "0")


# ---- the test's side ---------------------------------------------------------------------------

class _Server:
    """A forking server of this process, started on first use, gone when this process is; it
    imports ahead from ``shadowing`` (PYTHONPATH folders) first."""

    def __init__(self, shadowing: tuple[str, ...]):
        self.folder = tempfile.mkdtemp(prefix="ganrun-warm-")
        self.address = os.path.join(self.folder, "socket")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(shadowing)}
        # The server reads its stdin: when this process ends, EOF there ends the server.
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), self.address],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        ready = self.proc.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the warm-process server did not start: {ready!r}")
        atexit.register(self.close)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)
        for name in os.listdir(self.folder):
            os.unlink(os.path.join(self.folder, name))
        os.rmdir(self.folder)

    def start(self, request: dict, fds: list[int]) -> socket.socket:
        return _connect(self.address, request, fds)


def _connect(address: str, request: dict, fds: list[int]) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(address)
    socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
    return conn


def _read_line(conn: socket.socket) -> bytes:
    """A line from the server, read unbuffered: select() must see what is left."""
    line = b""
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            raise RuntimeError("the warm-process server went away before the process ended")
        line += byte
    return line


_servers: dict[tuple[str, ...], _Server] = {}


def _the_server(env: dict) -> _Server:
    """The server whose imports ahead are the ones a new interpreter with ``env`` would make:
    one of its own where PYTHONPATH holds one of those packages (hydra-core 1.4, say)."""
    shadowing = _shadowing(env)
    server = _servers.get(shadowing)
    if server is None or server.proc.poll() is not None:
        server = _servers[shadowing] = _Server(shadowing)
    return server


def _shadowing(env: dict) -> tuple[str, ...]:
    tops = {name.split(".")[0] for name in PRELOADED}
    folders = filter(None, env.get("PYTHONPATH", "").split(os.pathsep))
    return tuple(folder for folder in folders if any(
        os.path.exists(os.path.join(folder, top)) or
        os.path.exists(os.path.join(folder, f"{top}.py")) for top in tops))


class Popen:
    """``subprocess.Popen([sys.executable, *args], ...)`` started from the warm server: the same
    attributes and methods the tests use (pid, stdout, stderr, returncode, poll, wait,
    communicate, send_signal, terminate, kill)."""

    def __init__(self, args, *, cwd=None, env=None, stdin=DEVNULL, stdout=None, stderr=None,
                 text=False, start_new_session=False, preexec_fn=None):
        del preexec_fn  # the process starts with Python's own handlers, as a shell gives them
        args = [str(a) for a in args]
        if not (len(args) >= 2 and args[0] == "-m" or args and args[0].endswith(".py")):
            raise ValueError(f"warm.Popen runs `-m MODULE ARGS` or `SCRIPT.py ARGS`, not {args}")
        self.args, self.returncode = args, None
        self.stdin = None
        mine, theirs = [], []
        self.stdout = self._stream(stdout, 1, text, mine, theirs)
        if stderr == STDOUT:
            theirs.append(theirs[-1])
            self.stderr = None
        else:
            self.stderr = self._stream(stderr, 2, text, mine, theirs)
        theirs.insert(0, os.open(os.devnull, os.O_RDONLY))
        mine.append(theirs[0])
        request = {"args": args, "cwd": os.path.abspath(cwd or os.getcwd()),
                   "env": dict(os.environ if env is None else env),
                   "new_session": bool(start_new_session)}
        try:
            self._conn = _the_server(request["env"]).start(request, theirs)
        finally:
            for fd in mine:
                os.close(fd)
        self.pid = int(self._line())

    def _line(self) -> bytes:
        return _read_line(self._conn)

    @staticmethod
    def _stream(spec, fd, text, mine, theirs):
        """The fd the process gets for ``spec``; the read end this process keeps for PIPE."""
        if spec is None:
            theirs.append(fd)
        elif spec == DEVNULL:
            theirs.append(os.open(os.devnull, os.O_WRONLY))
            mine.append(theirs[-1])
        elif spec == PIPE:
            read, write = os.pipe()
            theirs.append(write)
            mine.append(write)
            raw = open(read, "rb")
            return io.TextIOWrapper(raw, encoding="utf-8", errors="replace") if text else raw
        else:
            theirs.append(spec if isinstance(spec, int) else spec.fileno())
        return None

    def poll(self):
        if self.returncode is None and select.select([self._conn], [], [], 0)[0]:
            self._finish()
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            if not select.select([self._conn], [], [], timeout)[0]:
                raise TimeoutExpired(self.args, timeout)
            self._finish()
        return self.returncode

    def _finish(self) -> None:
        self.returncode = os.waitstatus_to_exitcode(int(self._line()))
        self._conn.close()

    def communicate(self, input=None, timeout=None):
        del input
        results, readers = {}, []
        for name in ("stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None:
                reader = threading.Thread(target=lambda n=name, s=stream: results.update({n: s.read()}),
                                          daemon=True)
                reader.start()
                readers.append(reader)
        for reader in readers:
            reader.join(timeout)
            if reader.is_alive():
                raise TimeoutExpired(self.args, timeout)
        self.wait(timeout)
        for name in ("stdout", "stderr"):
            if getattr(self, name) is not None:
                getattr(self, name).close()
        return results.get("stdout"), results.get("stderr")

    def send_signal(self, signum) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def run(args, *, cwd=None, env=None, capture_output=False, text=False, timeout=None,
        check=False) -> CompletedProcess:
    """``subprocess.run([sys.executable, *args], ...)`` from the warm server (or a new
    interpreter with GANRUN_TEST_COLD=1)."""
    if cold():
        return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, check=check,
                              capture_output=capture_output, text=text, timeout=timeout)
    streams = PIPE if capture_output else None
    proc = Popen(args, cwd=cwd, env=env, stdout=streams, stderr=streams, text=text)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, args, stdout, stderr)
    return CompletedProcess(args, proc.returncode, stdout, stderr)


def popen(args, **kwargs):
    """``warm.Popen`` or, with GANRUN_TEST_COLD=1, ``subprocess.Popen`` of a new interpreter."""
    if cold():
        return subprocess.Popen([sys.executable, *map(str, args)], **kwargs)
    return Popen(args, **kwargs)


# ---- the stand-in interpreter's side -----------------------------------------------------------

STANDIN = """#!{python}
import sys
sys.path.insert(0, {tests!r})
import warm
warm.stand_in({address!r}, {python!r}, {shadowing!r}, sys.argv[1:])
"""
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)


# ganrun, and joblib's loky workers (the parallel sweep launcher's), which unpickle ganrun's
# jobs. Not submitit's local jobs: they name their files after their own pid, which a warm
# process does not share with the stand-in that submitit started.
WARM_PACKAGES = "ganrun,joblib"


def _warmable(args: list[str]) -> bool:
    packages = os.environ.get("GANRUN_TEST_WARM_PACKAGES", WARM_PACKAGES).split(",")
    return len(args) >= 2 and args[0] == "-m" and args[1].split(".")[0] in packages


def stand_in(address: str, python: str, shadowing: tuple[str, ...], args: list[str]) -> None:
    """``python ARGS`` as a warm process when ARGS are ``-m ganrun...`` (and PYTHONPATH asks for
    what the server imported ahead), else the real ``python``.

    Waits for the process, passing it the signals this process gets, and ends as it ended."""
    if not _warmable(args) or _shadowing(os.environ) != shadowing or not os.path.exists(address):
        os.execv(python, [python, *args])
    targets = sorted(fd for fd in map(int, os.listdir("/proc/self/fd")) if _inheritable(fd))
    request = {"args": args, "cwd": os.getcwd(), "env": dict(os.environ), "targets": targets,
               "new_session": os.getsid(0) == os.getpid(), "hangup": int(signal.SIGKILL)}
    pending: list[int] = []
    child: list[int] = []

    def forward(signum, frame):
        if not child:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):  # it ended; its status is on the way
            os.kill(child[0], signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    conn = _connect(address, request, targets)
    child.append(int(_read_line(conn)))
    for signum in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child[0], signum)
    status = int(_read_line(conn))
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # the folder listing's own descriptor, closed by now
        return False


# ---- the server's side -------------------------------------------------------------------------

def _serve(address: str) -> None:
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    import numpy
    import torch

    # sys.path as a new interpreter has it, less the entries that depend on where it started.
    start = {os.path.dirname(os.path.abspath(__file__)), ""}
    start |= set(filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    base = [p for p in sys.path if p not in start]
    threads = torch.get_num_threads()
    standin = os.path.join(os.path.dirname(address), "python")
    with open(standin, "w") as f:
        f.write(STANDIN.format(python=sys.executable, address=address,
                               shadowing=_shadowing(os.environ),
                               tests=os.path.dirname(os.path.abspath(__file__))))
    os.chmod(standin, 0o755)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        ready = select.select([listener, sys.stdin], [], [])[0]
        if sys.stdin in ready:
            return  # the tests' process has gone
        conn, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 64)
        request = json.loads(message)
        if os.fork() == 0:
            listener.close()
            _supervise(conn, fds, request, (base, threads, standin), numpy, torch)
        conn.close()
        for fd in fds:
            os.close(fd)


def _supervise(conn, fds, request, start, numpy, torch) -> None:
    """Forks the command's process, tells its pid, waits for it and tells how it ended; sends it
    the request's ``hangup`` signal if the requester goes away first."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become(fds, request, start, numpy, torch)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"{pid}\n".encode())
    ended = os.pidfd_open(pid)
    watching = [ended, conn] if request.get("hangup") else [ended]
    while conn in select.select(watching, [], [])[0] and not conn.recv(1):
        os.kill(pid, request["hangup"])
        watching = [ended]
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    try:
        conn.sendall(f"{status}\n".encode())
    finally:
        os._exit(0)


def _become(fds, request, start, numpy, torch) -> None:
    """Turns this forked process into ``python -m MODULE ARGS`` in the request's folder."""
    base, threads, standin = start
    targets = request.get("targets", range(len(fds)))
    above = max([*fds, *targets]) + 1  # out of the targets' way
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, above) for fd in fds]
    for target, fd in zip(targets, high):
        os.dup2(fd, target)
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd not in targets:
            with contextlib.suppress(OSError):
                os.close(fd)
    if request["new_session"]:
        os.setsid()
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(request["cwd"])
    args = request["args"]
    first = request["cwd"] if args[0] == "-m" else os.path.dirname(os.path.abspath(args[0]))
    sys.path[:] = [first, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), *base]
    for signum in signal.valid_signals():
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    numpy.random.seed()
    sys.executable = standin
    torch.set_num_threads(int(env.get("OMP_NUM_THREADS") or threads))
    _run(args)


def _run(args: list[str]) -> None:
    """Runs ``-m MODULE ARGS`` or ``SCRIPT.py ARGS`` as ``__main__``, then exits."""
    import runpy
    import traceback

    code, interrupted = 0, False
    try:
        if args[0] == "-m":
            sys.argv = args[1:]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args)
            runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exit_:
        code = _exit_code(exit_)
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True
    except BaseException:
        traceback.print_exc()
        code = 1
    _exit_as_an_interpreter_does(code, interrupted)


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=sys.stderr)
    return 1


def _exit_as_an_interpreter_does(code: int, interrupted: bool) -> None:
    try:
        threading._shutdown()  # joins non-daemon threads, as the interpreter does on exit
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        if interrupted:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1])
