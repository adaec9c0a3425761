"""The harness of the bad-input battery (tests/test_bad_*.py).

Each case prepares a bad input in a sandbox folder, runs one ganrun command as a user types it,
and checks what the user sees: the exit code, no traceback, a message naming the problem, and
that nothing outside the run or output folders was created or changed (a canary tree around
the sandbox's folders, the inputs included, is compared byte for byte before and after).

Commands run in this process (``ganrun.cli.main`` with ``sys.argv`` set), which costs a few
hundred milliseconds a case instead of seconds of imports; kills and sweeps, which need a
process of their own, run in a subprocess (``conftest.run_ganrun``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from fakedata import write_mnist
from in_process import Result, run_in_process

TINY_GEN = ["debug=tiny"]


def run_cli(*args, cwd: Path, env: dict | None = None) -> Result:
    """``ganrun ARGS`` in this process, from ``cwd`` (see tests/in_process.py)."""
    return run_in_process(*args, cwd=cwd, env=env)


class Sandbox:
    """``root/work`` (the current folder), ``root/src`` (the case's inputs), ``root/out`` (where
    outputs may go), ``root/home`` (HOME: caches may be written under home/.cache) and
    ``root/canary`` (files nobody may touch)."""

    # Caches a library keeps in the user's home (matplotlib's font list in ~/.config) and the
    # default data folder (data/, where ganrun downloads a data set as `ganrun train` does) are
    # allowed too: they are the user's choice, not a file's.
    ALLOWED = ("out", "work/outputs", "work/data", "home/.cache", "home/.config", "runs")

    def __init__(self, root: Path):
        self.root = root
        for name in ("work", "src", "out", "home", "canary/deep/deeper"):
            (root / name).mkdir(parents=True, exist_ok=True)
        for path, text in (("canary/a.txt", "a"), ("canary/deep/b.txt", "b"),
                           ("canary/deep/deeper/c.txt", "c"), ("work/keep.txt", "keep")):
            (root / path).write_text(text)
        self.env = {"HOME": str(root / "home")}

    def __getattr__(self, name: str) -> Path:
        if name in ("work", "src", "out", "home", "canary"):
            return self.root / name
        raise AttributeError(name)

    def allowed(self, path: Path) -> bool:
        relative = path.relative_to(self.root).as_posix()
        return any(relative == a or relative.startswith(a + "/") for a in self.ALLOWED)

    def snapshot(self) -> dict[str, tuple]:
        """Every file and folder outside the allowed folders: its mode and content hash."""
        found = {}
        for path in sorted(self.root.rglob("*")):
            if self.allowed(path):
                continue
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            found[path.relative_to(self.root).as_posix()] = (stat.st_mode, digest)
        return found

    def run(self, *args, env: dict | None = None) -> Result:
        return run_cli(*args, cwd=self.work, env={**self.env, **(env or {})})


@dataclass
class Case:
    """One bad input: ``prepare(box, shared)`` writes it and returns the command's arguments;
    the command must exit ``code`` with ``message`` (each of its strings) in its output."""

    kind: str
    name: str
    prepare: Callable
    code: int = 2
    message: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # strings that must not appear (e.g. a path it must not echo)
    check: Callable | None = None  # more checks on (box, result, shared)
    env: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"{self.kind}-{self.name}"


CASES: list[Case] = []


def case(kind: str, name: str, code: int = 2, message=(), absent=(), check=None, env=None):
    """Registers the decorated ``prepare`` function as a case."""
    def register(prepare):
        texts = (message,) if isinstance(message, str) else tuple(message)
        gone = (absent,) if isinstance(absent, str) else tuple(absent)
        CASES.append(Case(kind, name, prepare, code, texts, gone, check, dict(env or {})))
        return prepare
    return register


def cases(kind: str) -> list:
    chosen = [c for c in CASES if c.kind == kind]
    return [pytest.param(c, id=c.name) for c in chosen]


def run_case(c: Case, box: Sandbox, shared) -> Result:
    args = c.prepare(box, shared)
    before = box.snapshot()
    result = box.run(*args, env=c.env)
    shown = f"exit {result.code}\nstdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}"
    assert result.code == c.code, shown
    for unwanted in ("Traceback", "HYDRA_FULL_ERROR", *c.absent):
        assert unwanted not in result.stdout + result.stderr, shown
    for text in c.message:
        assert " ".join(text.split()) in result.text, shown
    if c.check is not None:
        c.check(box, result, shared)
    after = box.snapshot()
    changed = sorted(set(before) ^ set(after) | {k for k in before if after.get(k) != before[k]})
    assert not changed, f"created or changed outside the output folders: {changed}\n{shown}"
    return result


# Shared trained runs: tiny, trained once per test process in this process.

class Shared:
    """Runs and exports the cases read (never change: cases copy what they damage)."""

    def __init__(self, root: Path):
        self.root = root
        self.mnist = root / "mnist"
        write_mnist(self.mnist, n_train=64, n_test=16)
        self._made: dict[str, Path] = {}

    def train(self, name: str, *args) -> Path:
        if name not in self._made:
            run = self.root / name
            result = run_cli("train", *args, f"hydra.run.dir={run}", cwd=self.root)
            assert result.code == 0, result.stderr[-3000:]
            self._made[name] = run
        return self._made[name]

    @property
    def gen_run(self) -> Path:
        """A conditional DCGAN with an EMA generator, 3 iterations on a tiny MNIST."""
        return self.train("gen", *TINY_GEN, "dataset=mnist", f"dataset.root={self.mnist}",
                          "conditioning=embedding", "ema=decay", "seed=0")

    @property
    def gen_ckpt(self) -> Path:
        return self.gen_run / "checkpoints" / "last.ckpt"

    @property
    def gen_export(self) -> Path:
        out = self.root / "gen_export"
        if not out.is_dir():
            result = run_cli("export", f"ckpt={self.gen_ckpt}", f"out={out}", cwd=self.root)
            assert result.code == 0, result.stderr[-3000:]
        return out

    @property
    def toy_ckpt(self) -> Path:
        """An MLP GAN on the 8-mode ring: its metric (modes) needs no Inception weights."""
        run = self.train("toy", "dataset=ring", "model=mlp", "hardware=cpu",
                         "trainer.max_steps=3", "dataset.batch_size=16", "seed=0")
        return run / "checkpoints" / "last.ckpt"

    @property
    def cycle_ckpt(self) -> Path:
        run = self.train("cycle", "experiment=cyclegan_fashion_mnist", "dataset.source=mnist",
                         f"dataset.root={self.mnist}", "dataset.download=false", "debug=tiny",
                         "dataset.batch_size=2", "trainer.max_steps=2", "seed=0")
        return run / "checkpoints" / "last.ckpt"

    @property
    def inpaint_ckpt(self) -> Path:
        run = self.train("inpaint", "task=pix2pix", "model=pix2pix_resnet", "degrade=mask",
                         "dataset=mnist", f"dataset.root={self.mnist}",
                         "dataset.download=false", "debug=tiny", "dataset.batch_size=4",
                         "trainer.max_steps=2", "seed=0")
        return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    return Shared(tmp_path_factory.mktemp("shared"))


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)
