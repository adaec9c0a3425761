"""Hooks into Hydra's run lifecycle: checking the output folder, summing up a sweep."""

import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganrun.runner import run_folder


def failed(job: JobReturn) -> bool:
    """A job failed if it raised, or if it returned NaN (a run stopped by a user error)."""
    value = getattr(job, "_return_value", None)
    return job.status != JobStatus.COMPLETED or (isinstance(value, float) and math.isnan(value))


class OutputFolderCheck(Callback):
    """Creates the run (or sweep) folder before Hydra does, so that a folder that cannot be
    written gets a clear message instead of a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # run_folder remembers whether the folder is new: a failed start then removes it.
        self._make(config.hydra.run.dir, "hydra.run.dir", run_folder.make)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._make(config.hydra.sweep.dir, "hydra.sweep.dir",
                   lambda folder: Path(folder).mkdir(parents=True, exist_ok=True))

    @staticmethod
    def _make(folder: str, key: str, make) -> None:
        try:
            make(folder)
            probe = Path(folder) / ".ganrun-write-test"
            probe.touch()
            probe.unlink()
        except OSError as err:
            print(f"ganrun train: error: cannot write the output folder {folder} "
                  f"({err.strerror or err}). Choose a writable folder with {key}=<path>, or "
                  "run ganrun from a folder where outputs/ can be created.", file=sys.stderr)
            sys.exit(2)


class SweepSummary(Callback):
    """At the end of a sweep: which jobs finished and which failed, and the command that
    compares them; exit 1 if any failed."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, list[str], bool]] = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode is not None and str(config.hydra.mode) == "RunMode.MULTIRUN":
            self.jobs.append((config.hydra.job.num, list(job_return.overrides or []),
                              failed(job_return)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        bad = [job for job in self.jobs if job[2]]
        print(f"ganrun train: sweep finished: {len(self.jobs) - len(bad)} of {len(self.jobs)} "
              f"jobs succeeded (outputs in {config.hydra.sweep.dir}).", file=sys.stderr)
        for num, overrides, _ in bad:
            print(f"  job {num} failed: {' '.join(overrides)}", file=sys.stderr)
        print(f"see: ganrun report {config.hydra.sweep.dir}", file=sys.stderr)
        if bad:
            sys.exit(1)


class ObjectiveCheck(Callback):
    """For sweepers that optimize the returned value (Optuna): a job that returned NaN (failed
    or diverged) or None (the optimized metric was never logged) becomes a failed job, which
    the sweeper records as a failed trial. The Optuna plugin itself crashes on a NaN objective."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.COMPLETED:
            return
        value = job_return._return_value
        if value is None:
            reason = (f"optimized_metric={config.get('optimized_metric')} was never logged; "
                      "choose metrics that compute it (e.g. metrics=fid) or another "
                      "optimized_metric")
        elif isinstance(value, float) and math.isnan(value):
            reason = "the run failed or its objective is NaN (see its log above)"
        else:
            return
        job_return.status = JobStatus.FAILED
        job_return._return_value = RuntimeError(f"job {config.hydra.job.num}: {reason}")
