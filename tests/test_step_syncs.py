"""No host-device sync inside a training iteration, for every task: the finite checks,
statistics, EMA, image pools, lazy regularization, style mixing and schedules all stay on the
device; the host reads values only at the logging cadence and when a checkpoint is saved.

Counted at the Python level on a CPU (tests/synccount.py patches Tensor.item, __bool__,
tolist, cpu, numpy, ...): with logs, progress lines and checkpoints every 4 iterations, the
batches in between read nothing, and a run twice as long reads more only by its extra events."""

import json

import pytest

from badinput import run_cli
from fakedata import write_caption_folder, write_mnist
from task_contract import CONTRACTS, EXAMPLE

EVERY = 4
CADENCE = [f"callbacks.scalars.every_n_iterations={EVERY}",
           f"callbacks.progress.refresh_every_n_iterations={EVERY}",
           f"callbacks.checkpoint.last_every_n_iterations={EVERY}",
           "callbacks.checkpoint.every_n_iterations=0", "callbacks.samples.every_n_iterations=0"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync_data")
    write_mnist(root, n_train=64, n_test=16)
    write_caption_folder(root / "captions")
    return root


def syncs(task, root, folder, iterations: int) -> dict:
    contract = CONTRACTS[task]
    result = run_cli("train", *contract.train_args(root), *CADENCE,
                     f"trainer.max_steps={iterations}", f"hydra.run.dir={folder}",
                     "+callbacks.synccount._target_=synccount.SyncCount",
                     f"+callbacks.synccount.dirpath={folder}", cwd=folder.parent)
    assert result.code == 0, result.stderr[-3000:]
    return json.loads((folder / "syncs.json").read_text())


@pytest.mark.parametrize("task", list(CONTRACTS))
def test_no_sync_between_log_events(task, root, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    short = syncs(task, root, tmp_path / "short", 2 * EVERY)
    long = syncs(task, root, tmp_path / "long", 4 * EVERY)
    events = {1} | {i for i in range(1, 4 * EVERY + 1) if i % EVERY == 0}
    for counts in (short, long):
        quiet = [(it, n) for it, n in zip(counts["iterations"], counts["batches"])
                 if it not in events and n]
        assert not quiet, f"reads between log events (iteration, reads): {quiet}"
    by_iteration = dict(zip(long["iterations"], long["batches"]))
    # The long run reads more only at its extra events, iterations 12 and 16 (the first
    # three events are the short run's, with the same values logged).
    extra = by_iteration[3 * EVERY] + by_iteration[4 * EVERY]
    assert sum(long["batches"]) - sum(short["batches"]) == extra
    assert by_iteration[EVERY] > 0  # the log events do read: the counting works
