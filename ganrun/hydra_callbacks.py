"""Hooks into Hydra's run lifecycle: checking the output folder, summing up a sweep."""

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ganrun.runner import jobstatus, run_folder


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
    compares them; exit 1 if any failed.

    The jobs are read from their folders' ``status.json``, not from ``on_job_end``: parallel
    launchers (joblib, submitit) run that hook in the worker processes, where this object's
    list would never see them. A job whose status still says running when the sweep ends
    (killed, or crashed before it could record the end) counts as failed."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        jobs = sweep_jobs(sweep, getattr(self, "started", 0.0))
        bad = [job for job in jobs if job.status != "finished"]
        print(f"ganrun train: sweep finished: {len(jobs) - len(bad)} of {len(jobs)} jobs "
              f"succeeded (outputs in {sweep}).", file=sys.stderr)
        swept = swept_overrides(jobs)
        for job in bad:
            reason = "failed" if job.status == "failed" else f"{job.status} (did not finish)"
            shown = " ".join(o for o in job.overrides if o in swept) or " ".join(job.overrides)
            error = f": {job.error}" if job.error else ""
            print(f"  job {job.name} {reason} ({shown}){error}", file=sys.stderr)
        print(f"see: ganrun report {sweep}", file=sys.stderr)
        if bad:
            sys.exit(1)


@dataclass
class SweepJob:
    name: str
    status: str
    overrides: list[str]
    error: str = ""


def swept_overrides(jobs: list[SweepJob]) -> set[str]:
    """The overrides that tell the jobs apart (those not shared by every job)."""
    if len(jobs) < 2:
        return set()
    shared = set.intersection(*(set(job.overrides) for job in jobs))
    return {o for job in jobs for o in job.overrides if o not in shared}


def sweep_jobs(sweep: Path, since: float) -> list[SweepJob]:
    """The jobs of the sweep in ``sweep`` that started at or after ``since`` (a folder reused
    by an earlier sweep keeps its older jobs out of the count), in job order."""
    import yaml

    jobs = []
    for status_file in sweep.rglob(jobstatus.FILE):
        folder = status_file.parent
        record = jobstatus.read(folder)
        if record.get("started", 0.0) < since - 1.0:
            continue
        try:
            overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
        except (OSError, yaml.YAMLError):
            overrides = []
        name = str(folder.relative_to(sweep))
        jobs.append(SweepJob(name, str(record.get("status", "running")), list(overrides),
                             str(record.get("error", ""))[:300]))
    return sorted(jobs, key=lambda job: (len(job.name), job.name))
