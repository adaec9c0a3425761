"""``ganrun tune``: an Optuna study whose trials are ``ganrun train`` runs.

    ganrun tune hparams_search=fid_lr dataset.root=/data/fashion-mnist trainer.max_steps=20000

The study lives in its folder (``outputs/tune/<search>``): Optuna's journal file ``study.log``
and one run folder per trial (``trial_<n>``). Running the same command again continues it:
finished, pruned and failed trials count towards ``n_trials`` and are not run again, and a trial
that was interrupted resumes from its ``last.ckpt``. Each trial is a child process, so a crash
or an out-of-memory kill fails that trial alone; the trial reports its metric to the study at
each evaluation (``ganrun.callbacks.pruning``) and the study's pruner may stop it there. What
the study searches is composed and checked first (``ganrun.search``).

Stopping: SIGTERM/SIGINT/SIGUSR1 go on to the running trial, which saves ``last.ckpt``. If
``ganrun tune`` itself is killed (SIGKILL), the trial gets SIGTERM from the kernel (Linux) and
does the same.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import logging
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from ganrun import study as studies
from ganrun.errors import UserError, one_paragraph
from ganrun.search import Plan, plain, plan
from ganrun.runner import jobstatus

PROG = "ganrun tune"
log = logging.getLogger("ganrun")
EPILOG = """examples:
  ganrun tune hparams_search=fid_lr dataset.root=/usr/share/datasets/fashion-mnist
  ganrun tune hparams_search=fid_lr hparams_search/pruner=successive_halving hparams_search.n_trials=50
  ganrun tune hparams_search=fid_lr hparams_search.study_dir=outputs/tune/lr_study2
  ganrun report outputs/tune/fid_lr

Every override other than hparams_search.* is given to each trial's `ganrun train`. Running the
same command again continues the study; two `ganrun tune` of one study share its trials.
conf/hparams_search/fid_lr.yaml documents the keys of a search."""


# ---- the study ---------------------------------------------------------------------------------

def open_study(plan: Plan):
    """Creates the study, or loads the one already in the folder (refusing another direction)."""
    import optuna
    from hydra.utils import instantiate

    from ganrun.config import allow_building

    store = studies.storage(plan.folder)
    existing = {s.study_name: s for s in store.get_all_studies()}
    sampler = None
    if plan.spec.sampler:
        allow_building(str(plan.spec.sampler._target_))  # the user's own search config
        done = len(store.get_all_trials(store.get_study_id_from_name(plan.name), deepcopy=False)) \
            if plan.name in existing else 0
        sampler = instantiate(plan.spec.sampler, **_continued_seed(plan.spec.sampler, done))
    if plan.name in existing and \
            existing[plan.name].direction.name.lower() != plan.spec.direction:
        raise UserError(f"The study {plan.name} in {plan.folder} was created to "
                        f"{existing[plan.name].direction.name.lower()}, not to "
                        f"{plan.spec.direction}. Keep its direction, or start another study "
                        "with hparams_search.study_dir=<new folder>.")
    study = optuna.create_study(study_name=plan.name, storage=store, sampler=sampler,
                                direction=plan.spec.direction, load_if_exists=True)
    study.set_user_attr("pruner", plain(plan.spec.pruner))  # read by each trial
    study.set_user_attr("metric", plan.spec.metric)
    return study


def _continued_seed(sampler: DictConfig, done: int) -> dict:
    """A seeded sampler that starts again draws what it drew for the study's first trials: a
    continued study would repeat their parameters. Its seed moves on by the trials already
    there (a study is reproducible from its command and where it was stopped)."""
    seed = sampler.get("seed")
    return {"seed": seed + done} if isinstance(seed, int) and done else {}


class FileLock:
    """An exclusive ``flock`` on a file. A trial's lock is passed on to its training process,
    so it is held until both have exited: a second ``ganrun tune`` of the study never resumes
    a trial that is still stopping."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("a")

    def acquire(self, wait: bool = True) -> bool:
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            self.file.close()
            return False
        return True

    def release(self) -> None:
        self.file.close()  # closing this descriptor leaves the lock to the child, if it lives


class Tuner:
    """Runs the study's trials one after another until it holds ``n_trials``."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.study = open_study(plan)
        self.store = studies.storage(plan.folder)
        self.every = plan.every
        self.child: subprocess.Popen | None = None
        self.signal: int | None = None
        self.sampler_done = False

    def run(self) -> int:
        done = [t for t in self.study.trials if t.state.is_finished()]
        print(f"{PROG}: study {self.plan.name} in {self.plan.folder}: {len(done)} of "
              f"{self.plan.spec.n_trials} trials done; {self.plan.spec.metric} is "
              f"{self.plan.spec.direction}d, evaluated every {self.every} iterations.",
              file=sys.stderr, flush=True)
        with self._forwarded_signals():
            while self.signal is None:
                number, resume, lock = self._next_trial()
                if number is None:
                    break
                try:
                    self._run_trial(number, resume, lock)
                finally:
                    lock.release()
        if self.signal is not None:
            print(f"{PROG}: stopped by {signal.Signals(self.signal).name}; the running trial "
                  "saved its checkpoint. Run the same command again to continue the study.",
                  file=sys.stderr, flush=True)
            return 128 + self.signal
        return self._summary()

    def _next_trial(self):
        """(trial number, resume?, its lock) of the trial to run next; (None, ...) when the
        study is complete. Interrupted trials first; waits for those other processes run."""
        import time

        lock_dir = self.plan.folder / ".locks"
        while True:
            study_lock = FileLock(lock_dir / "study.lock")  # one process asks at a time
            study_lock.acquire()
            try:
                trials = self.study.get_trials(deepcopy=False)
                running = [t for t in trials if t.state.name == "RUNNING"]
                for trial in running:
                    lock = FileLock(lock_dir / f"trial_{trial.number}.lock")
                    if lock.acquire(wait=False):
                        return trial.number, True, lock
                if len(trials) < self.plan.spec.n_trials and not self.sampler_done:
                    trial = self.study.ask(self.plan.space)
                    lock = FileLock(lock_dir / f"trial_{trial.number}.lock")
                    lock.acquire()
                    return trial.number, False, lock
            finally:
                study_lock.release()
            if not running:
                return None, False, None
            print(f"{PROG}: waiting for trial(s) {', '.join(str(t.number) for t in running)}, "
                  "running in another process.", file=sys.stderr, flush=True)
            time.sleep(5)

    def _run_trial(self, number: int, resume: bool, lock: FileLock) -> None:
        folder = self.plan.folder / f"trial_{number}"
        trial = self.study.get_trials(deepcopy=False)[number]
        params = [studies.override(k, v) for k, v in studies.checked_params(
            trial, self.plan.space, self.plan.folder).items()]
        total = self.plan.spec.n_trials
        what = "resuming" if resume else "starting"
        print(f"{PROG}: trial {number} ({number + 1} of {total}), {what}: {' '.join(params)} "
              f"({folder})", file=sys.stderr, flush=True)
        studies.write_trial_file(folder, self.plan.folder, self.plan.name, number,
                                 self.plan.spec.metric)
        self.child = launch(self._command(folder, params, resume), keep_open=lock.file)
        code = self.child.wait()
        self.child = None
        if self.signal is not None:
            return  # the trial stays running in the study: the next `ganrun tune` resumes it
        self._tell(number, folder, code)

    def _command(self, folder: Path, params: list[str], resume: bool) -> list[str]:
        # A resumed trial gets the same command line as when it started (never the overrides
        # its folder recorded, which are data): resume=true continues its last.ckpt.
        resuming = resume and (folder / "checkpoints" / "last.ckpt").is_file()
        config_dir = ["--config-dir", self.plan.config_dir] if self.plan.config_dir else []
        return [sys.executable, "-m", "ganrun", "train", *self.plan.overrides, *params,
                f"optimized_metric={self.plan.spec.metric}",
                f"metrics.every_n_iterations={self.every}",
                "resume=true" if resuming else "resume=null", f"hydra.run.dir={folder}",
                f"callbacks.hparams.swept=[{','.join(self.plan.space)}]",
                "+callbacks.pruning._target_=ganrun.callbacks.pruning.OptunaPruning",
                "+callbacks.pruning.run_dir=${paths.output_dir}", *config_dir]

    def _tell(self, number: int, folder: Path, code: int) -> None:
        from optuna.trial import TrialState

        record = jobstatus.read(folder)
        status, value = record.get("status"), record.get("objective")
        metric = self.plan.spec.metric
        if status == "finished" and studies.finite(value):
            self._record(number, float(value))
            print(f"{PROG}: trial {number} finished: {metric} {value:.4g}{self._best_note()}",
                  file=sys.stderr, flush=True)
            return
        if status == "pruned":
            self._record(number, state=TrialState.PRUNED)
            steps = self.study.trials[number].intermediate_values
            at = max(steps) if steps else 0
            print(f"{PROG}: trial {number} pruned at iteration {at} ({metric} "
                  f"{steps.get(at, math.nan):.4g})", file=sys.stderr, flush=True)
            return
        if status == "finished":
            error = f"{metric} was never logged or is not finite ({value})"
        else:
            error = record.get("error") or f"ganrun train exited with code {code}"
        self.store.set_trial_user_attr(self._trial_id(number), "error", error[:500])
        self._record(number, state=TrialState.FAIL)
        print(f"{PROG}: trial {number} failed: {error}", file=sys.stderr, flush=True)

    def _record(self, number: int, value: float | None = None, state=None) -> None:
        try:
            self.study.tell(number, value, state=state)
        except RuntimeError as err:
            # A sampler that has run out of points (GridSampler) asks the study to stop, which
            # only an optimize() loop can do; the trial's result is stored all the same.
            if "Study.stop" not in str(err):
                raise
            self.sampler_done = True

    def _trial_id(self, number: int) -> int:
        study_id = self.store.get_study_id_from_name(self.plan.name)
        return self.store.get_trial_id_from_study_id_trial_number(study_id, number)

    def _best_note(self) -> str:
        try:
            best = self.study.best_trial
        except ValueError:
            return ""
        return f" (best: trial {best.number}, {best.value:.4g})"

    def _summary(self) -> int:
        trials = self.study.trials
        if self.sampler_done and len(trials) < self.plan.spec.n_trials:
            print(f"{PROG}: the sampler has tried all its points ({len(trials)} trials, fewer "
                  f"than n_trials={self.plan.spec.n_trials}).", file=sys.stderr, flush=True)
        counts = {state: sum(t.state.name == state for t in trials)
                  for state in ("COMPLETE", "PRUNED", "FAIL")}
        print(f"{PROG}: study {self.plan.name}: {len(trials)} trials: {counts['COMPLETE']} "
              f"finished, {counts['PRUNED']} pruned, {counts['FAIL']} failed.",
              file=sys.stderr, flush=True)
        if not counts["COMPLETE"]:
            print(f"{PROG}: no trial finished; see the trials' train.log in {self.plan.folder}.",
                  file=sys.stderr, flush=True)
            return 1
        best = self.study.best_trial
        params = " ".join(studies.override(k, v) for k, v in best.params.items())
        print(f"{PROG}: best: trial {best.number}, {self.plan.spec.metric} {best.value:.4g}: "
              f"{params} ({self.plan.folder / f'trial_{best.number}'})\n"
              f"see: ganrun report {self.plan.folder}", file=sys.stderr, flush=True)
        return 0

    @contextlib.contextmanager
    def _forwarded_signals(self):
        from ganrun.callbacks.signals import STOP_SIGNALS, handled

        def forward(signum, frame):
            self.signal = signum
            if self.child is not None and self.child.poll() is None:
                self.child.send_signal(signum)

        with handled(STOP_SIGNALS, forward):
            yield


def launch(command: list[str], keep_open) -> subprocess.Popen:
    """Starts a trial's ``ganrun train``, holding ``keep_open`` (its lock) open as well.

    On Linux the trial runs in its own session, so that Ctrl-C reaches it once, through
    ``ganrun tune``; and it gets SIGTERM (checkpoint, then exit) if ``ganrun tune`` dies.
    Elsewhere it shares the terminal's process group."""
    if not sys.platform.startswith("linux"):
        return subprocess.Popen(command, pass_fds=[keep_open.fileno()])
    return subprocess.Popen(command, pass_fds=[keep_open.fileno()], start_new_session=True,
                            preexec_fn=_terminate_with_parent)


def _terminate_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run an Optuna study of ganrun train runs (hparams_search=...): trials "
                    "pruned at their metric evaluations, resumable from the study folder.")
    parser.add_argument("overrides", nargs="*", help="hparams_search=<search>, its keys "
                        "(hparams_search.n_trials=50) and the overrides of every trial")
    parser.add_argument("--config-dir", "-cd", help="a folder of your own config options, "
                        "as for ganrun train")
    args = parser.parse_intermixed_args(argv)
    from ganrun.commands.hydra_app import quiet_library_noise

    quiet_library_noise()
    try:
        code = Tuner(plan(args.overrides, args.config_dir)).run()
    except UserError as err:
        if os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"{PROG}: error: {one_paragraph(err)}", file=sys.stderr, flush=True)
        sys.exit(2)
    sys.exit(code)
