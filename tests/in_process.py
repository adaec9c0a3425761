"""``ganrun ARGS`` run in the test process: ``ganrun.cli.main`` with ``sys.argv`` set, its output
captured, its exit code returned. A command costs a few hundred milliseconds here instead of the
seconds a new process spends importing torch, Lightning and Hydra.

What a command changes in the process is put back afterwards, so that the next command starts as
a new process would: the working folder, the environment (``PYTHONPATH`` entries become
``sys.path`` entries), ``sys.path`` and the modules imported from outside the installed packages
(a user's own task of the same name in another test's folder), logging, warnings filters, signal
handlers, Hydra's global state and torch's process-wide settings.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)
KEPT_MODULE_ROOTS = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix})
REPO = str(Path(__file__).resolve().parents[1])


@dataclass
class Result:
    code: int | str
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """stdout and stderr with white space folded, as one paragraph reads."""
        return " ".join((self.stdout + " " + self.stderr).split())


def _torch_settings() -> tuple:
    return (torch.get_default_dtype(), torch.get_num_threads(),
            torch.get_float32_matmul_precision(), torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.is_grad_enabled())


def _restore_torch(saved: tuple) -> None:
    dtype, threads, precision, deterministic, benchmark, cudnn_det, grad = saved
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
    torch.set_float32_matmul_precision(precision)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, cudnn_det
    torch.set_grad_enabled(grad)


def _foreign(module) -> bool:
    """Whether a module came from outside the installed packages and this repo (a test folder)."""
    path = getattr(module, "__file__", None)
    if not path:
        return False
    path = str(Path(path).resolve())
    return not path.startswith(KEPT_MODULE_ROOTS) and not path.startswith(REPO)


def _fresh_warnings() -> None:
    """A new interpreter's warning filters, warnings printed on stderr (not pytest's record)."""
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: \
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _process_state(cwd: Path, env: dict | None):
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    saved_path, saved_modules = sys.path[:], set(sys.modules)
    saved_signals = {s: signal.getsignal(s) for s in SIGNALS}
    saved_torch = _torch_settings()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
                    if isinstance(logger, logging.Logger)}
    root.handlers = []  # each command configures its own output, as in a new process
    os.environ.pop("GANRUN_DEBUG", None)
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    sys.path[:0] = [p for p in (env or {}).get("PYTHONPATH", "").split(os.pathsep) if p]
    os.chdir(cwd)
    try:
        with warnings.catch_warnings():
            _fresh_warnings()
            yield
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        for handler in root.handlers:
            with contextlib.suppress(Exception):
                handler.close()
        root.handlers, root.level = saved_handlers, saved_level
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _restore_torch(saved_torch)
        for name in set(sys.modules) - saved_modules:
            if _foreign(sys.modules[name]):
                del sys.modules[name]
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv


def run_in_process(*args, cwd: Path, env: dict | None = None) -> Result:
    """``ganrun ARGS`` in this process, from ``cwd``; an exception that escapes the command
    (which a user would see as a traceback) is returned as the code "traceback"."""
    from ganrun.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int | str = 0
    with _process_state(Path(cwd), env):
        sys.argv = ["ganrun", *map(str, args)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:  # sys.exit("message") prints it, as Python does
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
            except BaseException:  # what a user would see as a traceback
                code = "traceback"
                err.write(traceback.format_exc())
    return Result(code, out.getvalue(), err.getvalue())
