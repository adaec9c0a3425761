"""`ganrun tune`: an Optuna study of training runs, with pruning at the metric evaluations, failed
trials recorded, and a study that continues after SIGTERM or SIGKILL."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import warm
from badinput import run_cli
from conftest import reached, run_ganrun
from ganrun import study as studies

# Tiny trials on the 2-D ring: a fully connected GAN of a few thousand weights.
RING = ["dataset=ring", "model=mlp", "hardware=cpu", "model.latent_dim=8",
        "dataset.batch_size=32", "model.generator.hidden=[32,32]",
        "model.discriminator.hidden=[32,32]", "callbacks.progress.refresh_every_n_iterations=50"]

# Four trials on a grid: max_steps 8 or 40, a valid or a diverging learning rate (an invalid
# one is refused before the study starts). Evaluations every 8 iterations (16 / 2); the pruner
# prunes any trial evaluated at iteration >= 10, so the 40-iteration trial stops at 16, the
# 8-iteration one finishes, and the lr=1e30 trials diverge and fail.
PRUNED_SEARCH = """# @package hparams_search
metric: metrics/modes
direction: maximize
n_trials: 4
evaluations: 2
overrides: [metrics=modes, metrics.num_samples=50]
sampler:
  _target_: optuna.samplers.GridSampler
  search_space: {trainer.max_steps: [8, 40], optimizer.lr: [0.001, 1.0e30]}
  seed: 0
pruner: {_target_: optuna.pruners.ThresholdPruner, lower: 1.0e9, n_warmup_steps: 10}
params:
  trainer.max_steps: {choice: [8, 40]}
  optimizer.lr: {choice: [0.001, 1.0e30]}
"""

# Three trials of 400 iterations, long enough to be stopped in the middle; no metric needed.
LONG_SEARCH = """# @package hparams_search
metric: loss/g
direction: minimize
n_trials: 3
evaluations: 4
sampler: {_target_: optuna.samplers.RandomSampler, seed: 0}
pruner: null
params:
  optimizer.lr: {float: [1.0e-4, 1.0e-3], log: true}
"""


def search_dir(tmp_path: Path, name: str, text: str) -> Path:
    conf = tmp_path / "conf"
    (conf / "hparams_search").mkdir(parents=True, exist_ok=True)
    (conf / "hparams_search" / f"{name}.yaml").write_text(text)
    return conf


def trial_states(folder: Path) -> dict[int, str]:
    return {t.number: t.state.name for t in studies.load(folder).trials}


def test_tune_prunes_fails_and_reports(tmp_path):
    conf = search_dir(tmp_path, "pruned", PRUNED_SEARCH)
    proc = run_ganrun("tune", "hparams_search=pruned", *RING, "trainer.max_steps=16",
                      "--config-dir", conf, cwd=tmp_path)
    folder = tmp_path / "outputs" / "tune" / "pruned"
    study = studies.load(folder)
    by_params = {(t.params["trainer.max_steps"], t.params["optimizer.lr"]): t for t in study.trials}
    assert {k: t.state.name for k, t in by_params.items()} == {
        (8, 0.001): "COMPLETE", (40, 0.001): "PRUNED", (8, 1e30): "FAIL", (40, 1e30): "FAIL"}
    pruned = by_params[(40, 0.001)]
    assert sorted(pruned.intermediate_values) == [8, 16]  # stopped at its second evaluation
    assert "Training diverged" in by_params[(8, 1e30)].user_attrs["error"]
    pruned_dir = folder / f"trial_{pruned.number}"
    assert json.loads((pruned_dir / "status.json").read_text())["status"] == "pruned"
    assert "Training finished: pruned by the study's ThresholdPruner at iteration 16" in \
        (pruned_dir / "train.log").read_text()
    assert f"trial {pruned.number} pruned at iteration 16" in proc.stderr
    assert "4 trials: 1 finished, 1 pruned, 2 failed" in proc.stderr
    assert f"see: ganrun report {Path('outputs/tune/pruned')}" in proc.stderr

    report = run_ganrun("report", folder, cwd=tmp_path)
    assert report.stdout.count("| pruned |") == 1 and report.stdout.count("| failed |") == 2
    best = by_params[(8, 0.001)]
    assert f"Best trial: {best.number} (metrics/modes {best.value:.4g}" in report.stdout
    assert f"Pruned trials: {pruned.number} (at iteration 16)" in report.stdout
    assert "Parameter importances: need at least 2 finished trials" in report.stdout
    assert "Pruned trials" in (folder / "report.md").read_text()
    # A trial's checkpoint names the pruning callback tune added: it still loads and exports.
    run_ganrun("export", f"ckpt={folder / f'trial_{best.number}' / 'checkpoints' / 'last.ckpt'}",
               "out=best", cwd=tmp_path)
    assert (tmp_path / "best" / "model.safetensors").is_file()


def _tune(tmp_path: Path, conf: Path) -> subprocess.Popen:
    command = ["-m", "ganrun", "tune", "hparams_search=long", *RING,
               "trainer.max_steps=400", "callbacks.checkpoint.last_every_n_iterations=5",
               "--config-dir", str(conf)]
    # Output to a file: a pipe nobody reads would fill up and block the trials.
    err = tmp_path / "tune.err"
    proc = warm.popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err.open("a"),
                      start_new_session=True)
    proc.cwd_err = err
    return proc


def _wait(condition, proc, what: str, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not _safely(condition):
        if time.time() > deadline or (proc is not None and proc.poll() is not None):
            output = Path(proc.cwd_err).read_text()[-3000:] if proc is not None else ""
            raise AssertionError(f"{what} did not happen: {output}")
        time.sleep(0.1)


def _safely(condition) -> bool:
    try:
        return condition()
    except (OSError, RuntimeError, EOFError):  # a file being written
        return False


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "status.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def test_tune_continues_after_sigterm_and_sigkill(tmp_path):
    conf = search_dir(tmp_path, "long", LONG_SEARCH)
    folder = tmp_path / "outputs" / "tune" / "long"
    first, second = folder / "trial_0", folder / "trial_1"

    # SIGTERM to ganrun tune: it passes the signal on, the trial saves last.ckpt, both exit.
    proc = _tune(tmp_path, conf)
    _wait(lambda: reached(second, 5), proc, "a checkpoint of trial 1")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 128 + signal.SIGTERM
    assert "Run the same command again to continue the study" in proc.cwd_err.read_text()
    assert _status(first) == "finished" and _status(second) == "stopped"
    assert trial_states(folder) == {0: "COMPLETE", 1: "RUNNING"}
    first_record = json.loads((first / "status.json").read_text())

    # SIGKILL to ganrun tune (its process group): the kernel sends the trial SIGTERM, and it
    # saves its checkpoint and stops as well.
    proc = _tune(tmp_path, conf)
    _wait(lambda: (second / "train.log").read_text().count("Resuming from") == 1, proc,
          "trial 1 resuming")
    _wait(lambda: _status(second) == "running", proc, "trial 1 running")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait(lambda: _status(second) == "stopped", None, "trial 1 stopping after its parent died", 60)
    assert trial_states(folder) == {0: "COMPLETE", 1: "RUNNING"}

    # The same command again: trial 0 is not run again, trial 1 resumes, the study ends at 3.
    done = run_ganrun("tune", "hparams_search=long", *RING, "trainer.max_steps=400",
                      "callbacks.checkpoint.last_every_n_iterations=5", "--config-dir", conf,
                      cwd=tmp_path)
    assert "1 of 3 trials done" in done.stderr and "trial 1 (2 of 3), resuming" in done.stderr
    assert trial_states(folder) == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE"}
    # The seeded sampler started again does not draw trial 0's learning rate a second time.
    assert len({t.params["optimizer.lr"] for t in studies.load(folder).trials}) == 3
    assert json.loads((first / "status.json").read_text()) == first_record
    log = (second / "train.log").read_text()
    assert log.count("Resuming from") == 2 and "trainer.max_steps=400 reached" in log
    report = run_ganrun("report", folder, cwd=tmp_path).stdout
    assert report.count("| finished |") == 3 and "| 400 |" in report
    assert "Parameter importances: optimizer.lr 1.00" in report


def test_tune_refuses_what_would_fail_every_trial(tmp_path):
    conf = search_dir(tmp_path, "long", LONG_SEARCH)
    search_dir(tmp_path, "typo", LONG_SEARCH.replace("optimizer.lr:", "optimizer.lrr:"))
    cases = [
        ((), "ganrun tune needs a search: hparams_search=<option>"),
        (("hparams_search=long", "trainer.max_steps=null", "trainer.max_epochs=1"),
         "set trainer.max_steps=<iterations>"),
        (("hparams_search=long", "hparams_search.metric=metrics/fid"),
         "the trials evaluate no metric (metrics=none)"),
        (("hparams_search=long", "hparams_search.direction=up"),
         "hparams_search.direction must be minimize or maximize"),
        (("hparams_search=typo",), "`optimizer.lrr` is not a key"),
        (("hparams_search=long", "hparams_search.pruner={_target_:os.system}"),
         "is not one of Optuna's pruners"),
        (("hparams_search=long", "hparams_search.n_trail=3"), "n_trail"),
    ]
    for args, message in cases:
        result = run_cli("tune", *args, *RING[:2], "--config-dir", conf, cwd=tmp_path)
        assert result.code == 2 and message in result.text, (args, result.text[-1500:])
        assert "Traceback" not in result.text
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("trial_*"))


def test_train_points_a_search_to_tune(tmp_path, mnist_root):
    result = run_cli("train", "hparams_search=fid_lr", "dataset=mnist",
                     f"dataset.root={mnist_root}", "hardware=cpu", cwd=tmp_path)
    assert result.code == 2 and "run `ganrun tune hparams_search=<search>" in result.text


def test_search_presets_compose(tmp_path, monkeypatch):
    from ganrun.search import plan

    monkeypatch.chdir(tmp_path)
    median = plan(["hparams_search=fid_lr", "dataset.root=data"], None)
    assert median.name == "fid_lr" and median.spec.pruner._target_ == "optuna.pruners.MedianPruner"
    assert median.spec.metric == "metrics/fid" and median.spec.overrides == ["metrics=fid"]
    assert set(median.space) == {"optimizer.lr", "optimizer.generator.betas",
                                 "optimizer.discriminator.betas", "trainer.n_critic", "loss"}
    assert median.folder == Path("outputs/tune/fid_lr")
    halving = plan(["hparams_search=fid_lr", "hparams_search/pruner=successive_halving"], None)
    assert halving.spec.pruner._target_ == "optuna.pruners.SuccessiveHalvingPruner"
    assert studies.pruner_from(dict(halving.spec.pruner)).__class__.__name__ == \
        "SuccessiveHalvingPruner"


@pytest.mark.parametrize("spec, message", [
    ({"float": [1, 2], "choice": [1]}, "must be one of"),
    ({"int": [5, 1]}, "low < high"),
    ({"choice": []}, "is empty"),
    ({"float": [0.0, 1.0], "log": True}, "hparams_search.params.x"),
])
def test_search_space_errors(spec, message):
    from ganrun.errors import UserError

    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        studies.distributions({"x": spec})
