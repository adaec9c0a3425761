"""A trial of ``ganrun tune`` reports its metric to the Optuna study at each evaluation and
stops early when the study's pruner says it is clearly worse than the other trials were at the
same iteration.

The study and trial come from ``trial.json`` in the run folder (written by ``ganrun tune``), so
a trial resumed by hand (``ganrun train resume=true hydra.run.dir=<trial folder>``) still
reports to its study. The decision is taken on rank 0 and shared with the other ranks.
"""

import logging
from pathlib import Path

from ganrun import study as studies
from ganrun.callbacks.base import IterationCallback
from ganrun.callbacks.metrics import MetricsCallback

log = logging.getLogger("ganrun")


class OptunaPruning(IterationCallback):
    """Reports ``metric`` (from the metrics callback's evaluations) to the trial named in
    ``<run_dir>/trial.json`` and stops training when the study's pruner prunes it. After the
    run, ``status`` is ``pruned`` and ``stopped`` says why."""

    status = "pruned"

    def __init__(self, run_dir: str):
        self.run_dir = Path(run_dir)
        self.stopped: str | None = None
        self._trial = None

    def on_fit_start(self, trainer, pl_module):
        if trainer.is_global_zero:
            self._trial = self._open()

    def _open(self):
        import optuna

        record = studies.read_trial_file(self.run_dir)
        if record is None:
            return None
        store = studies.storage(record["study_dir"])
        study = optuna.load_study(study_name=record["study"], storage=store,
                                  sampler=optuna.samplers.RandomSampler())
        study.pruner = studies.pruner_from(study.user_attrs.get("pruner"))
        study_id = store.get_study_id_from_name(record["study"])
        trial_id = store.get_trial_id_from_study_id_trial_number(study_id, record["trial"])
        if store.get_trial(trial_id).state != optuna.trial.TrialState.RUNNING:
            log.warning("Trial %d of the study in %s is no longer running: its values are not "
                        "reported.", record["trial"], record["study_dir"])
            return None
        return study, store, trial_id, record["metric"]

    def on_iteration_end(self, trainer, pl_module, batch):
        if not any(isinstance(c, MetricsCallback) and c.evaluated_at == pl_module.iteration
                   for c in trainer.callbacks):
            return
        prune = self._report(trainer, pl_module.iteration) if trainer.is_global_zero else None
        prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            self.stopped = prune
            trainer.should_stop = True

    def _report(self, trainer, iteration: int) -> str | None:
        if self._trial is None:
            return None
        study, store, trial_id, metric = self._trial
        value = trainer.callback_metrics.get(metric)
        if value is None:
            return None
        value = float(value)
        store.set_trial_intermediate_value(trial_id, iteration, value)
        if not study.pruner.prune(study, store.get_trial(trial_id)):
            return None
        return (f"pruned by the study's {type(study.pruner).__name__} at iteration {iteration} "
                f"({metric} {value:.4g} is worse than the other trials' at this iteration)")
