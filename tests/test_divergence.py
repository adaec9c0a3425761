"""NaN/inf losses: stop (default), skip or roll back; sweeps survive one diverging job."""

from pathlib import Path

import torch

from conftest import TINY, run_ganrun, scalars

TESTS = str(Path(__file__).parent)


def nan_config(tmp_path, start, count=1_000_000) -> Path:
    folder = tmp_path / "conf" / "loss"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.yaml").write_text(f"_target_: nanloss.NaNAt\nstart: {start}\ncount: {count}\n")
    return tmp_path / "conf"


def train(tmp_path, root, *extra, check=True):
    return run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={root}", "loss=bad",
                      "callbacks.scalars.every_n_iterations=1",
                      "callbacks.checkpoint.last_every_n_iterations=2", *extra,
                      "--config-dir", tmp_path / "conf", cwd=tmp_path, check=check,
                      env={"PYTHONPATH": TESTS})


def test_stop_names_the_iteration_and_keeps_the_last_good_checkpoint(tmp_path, mnist_root):
    nan_config(tmp_path, start=5)
    run = tmp_path / "run"
    proc = train(tmp_path, mnist_root, "trainer.max_steps=8", f"hydra.run.dir={run}",
                 check=False)
    assert proc.returncode == 2
    assert "Training diverged at iteration 5: loss/d is nan" in proc.stderr
    assert str(run / "checkpoints" / "last.ckpt") in proc.stderr
    assert "Traceback" not in proc.stderr
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganrun"]["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_skip_goes_on_and_counts(tmp_path, mnist_root):
    nan_config(tmp_path, start=3, count=2)
    run = tmp_path / "run"
    train(tmp_path, mnist_root, "divergence=skip", "trainer.max_steps=6", f"hydra.run.dir={run}")
    logged = scalars(run)
    assert [v for _, v in logged["divergence/skipped"]] == [0, 0, 1, 2, 2, 2]
    assert torch.isfinite(torch.tensor([v for _, v in logged["loss/g"]])).all()


def test_rollback_reloads_the_checkpoint_with_a_lower_learning_rate(tmp_path, mnist_root):
    nan_config(tmp_path, start=5, count=1)
    run = tmp_path / "run"
    train(tmp_path, mnist_root, "divergence=rollback", "trainer.max_steps=6",
          f"hydra.run.dir={run}")
    assert scalars(run)["divergence/rollbacks"][-1] == (6, 1.0)
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert [s["param_groups"][0]["lr"] for s in ckpt["optimizer_states"]] == [1e-4, 1e-4]


def test_one_diverging_job_does_not_stop_a_sweep(tmp_path, mnist_root):
    nan_config(tmp_path, start=2)
    proc = run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      "-m", "loss=bad,bce", "hydra.sweep.dir=sweep",
                      "--config-dir", tmp_path / "conf", cwd=tmp_path, check=False,
                      env={"PYTHONPATH": TESTS})
    assert proc.returncode == 1
    assert "Training diverged at iteration 2" in proc.stderr
    assert "sweep finished: 1 of 2 jobs succeeded" in proc.stderr
    assert "job 0 failed" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt").is_file()


def test_skip_restores_the_buffers_and_a_run_that_cannot_recover_is_not_finished(
        tmp_path, mnist_root):
    """lr=1e30: the first D update makes NaN; every later one would too. Skipping keeps D's
    batch-norm statistics finite (the skipped forward passes moved them), and a run whose
    updates are all skipped stops as diverged, never "finished"."""
    from badinput import run_cli
    from ganrun.runner import jobstatus

    run = tmp_path / "run"
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "divergence=skip", "divergence.max_skipped_in_a_row=6",
                     "divergence.max_weight=1e38", "optimizer.lr=1e30", "trainer.max_steps=50",
                     "callbacks.scalars.every_n_iterations=1",
                     "callbacks.checkpoint.last_every_n_iterations=1", f"hydra.run.dir={run}",
                     cwd=tmp_path)
    assert result.code == 2 and "cannot recover, so it stopped as diverged" in result.text
    assert jobstatus.read(run)["status"] == "failed"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganrun"]["iteration"] < 50
    for key, value in ckpt["state_dict"].items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key  # running_mean/var included


def test_weights_grown_past_the_bound_are_a_divergence(tmp_path, mnist_root):
    """A huge learning rate that stays finite (lr=1e6 with weight clipping off) blows the
    weights up: stop names it at the next read of the run's health."""
    from badinput import run_cli

    run = tmp_path / "run"
    result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                     "optimizer.lr=1e6", "divergence.max_weight=1e4", "trainer.max_steps=20",
                     "callbacks.scalars.every_n_iterations=1", f"hydra.run.dir={run}",
                     cwd=tmp_path)
    assert result.code == 2 and "the weights of" in result.text and "grew to" in result.text


def test_rollback_refuses_a_factor_outside_zero_one(tmp_path, mnist_root):
    from badinput import run_cli

    for factor in ("-1", "0", "1", "nan"):
        result = run_cli("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                         "divergence=rollback", f"divergence.lr_factor={factor}",
                         "hydra.run.dir=run", cwd=tmp_path)
        assert result.code == 2 and "lr_factor must be between 0 and 1" in result.text, factor
