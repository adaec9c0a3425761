"""Metrics end to end with the real (converted) Inception: during training, `ganrun eval` of a
checkpoint and of two image folders, and their user errors. Tiny sample counts: the Inception
runs at about 12 images/s on a CPU."""

import json

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FASHION, TINY, run_ganrun, scalars, unavailable

FEW = ["metrics.num_samples=16", "metrics.real_samples=16"]
SMALL_KID = ["metrics.evaluate.inception.scores.kid.subset_size=8",
             "metrics.evaluate.inception.scores.kid.subsets=5"]


@pytest.fixture(scope="module")
def env(tmp_path_factory, torch_home):
    return {"TORCH_HOME": str(torch_home),
            "GANRUN_CACHE_DIR": str(tmp_path_factory.mktemp("ganrun_cache"))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, env):
    """3 iterations on real Fashion-MNIST with FID, KID and precision/recall every 2."""
    if not FASHION.is_dir():
        unavailable(f"{FASHION} is absent: apt-get install dataset-fashion-mnist")
    root = tmp_path_factory.mktemp("metrics_run")
    proc = run_ganrun("train", *TINY, f"dataset.root={FASHION}", "metrics=fid_kid_pr",
                      "metrics.every_n_iterations=2", *FEW, *SMALL_KID,
                      f"hydra.run.dir={root / 'run'}", cwd=root, env=env)
    return root / "run", proc


def hparam_tags(run) -> str:
    events = EventAccumulator(str(run))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    return " ".join(str(value) for value in content.values())


def test_training_logs_metrics_every_n_iterations_and_at_the_end(trained):
    run, proc = trained
    logged = scalars(run)
    for tag in ("metrics/fid", "metrics/kid", "metrics/precision", "metrics/recall"):
        assert [step for step, _ in logged[tag]] == [2, 3], tag
    assert all(value > 0 for _, value in logged["metrics/fid"])
    assert all(0 <= value <= 1 for _, value in logged["metrics/precision"])
    assert "metrics/fid" in hparam_tags(run)
    assert "Iteration 2: fid " in proc.stdout and "(FID from 16 generated and 16 real" in proc.stdout
    assert proc.stdout.count("strongly biased at that size") == 1
    assert (run / "checkpoints" / "best.ckpt").is_file()
    # The real features were computed once, then read from the cache.
    assert proc.stdout.count("Real features: computed") == 1
    assert proc.stdout.count("Real features: cache hit") == 1


def test_eval_of_a_checkpoint_prints_json_and_records_it_beside_that_checkpoint(trained, env,
                                                                                tmp_path):
    run, _ = trained
    ckpt = run / "checkpoints" / "last.ckpt"
    proc = run_ganrun("eval", f"ckpt={ckpt}", "metrics=fid_kid_pr", "num_samples=16",
                      "metrics.real_samples=16", *SMALL_KID, cwd=tmp_path, env=env)
    values = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(values) == {"fid", "kid", "kid_std", "precision", "recall", "num_samples",
                           "real_samples"}
    assert values["fid"] > 0 and values["num_samples"] == values["real_samples"] == 16
    assert "FID from 16 generated and 16 real images" in proc.stderr
    assert "strongly biased at that size (below 2,000)" in proc.stderr
    recorded = json.loads((ckpt.parent / "last.metrics.json").read_text())
    assert recorded.pop("checkpoint")["file"] == "last.ckpt" and recorded == values
    assert "Real features: cache hit" in proc.stderr  # the training run's real features

    # Another checkpoint of the run gets its own file: last.ckpt's values stay.
    best = run_ganrun("eval", f"ckpt={ckpt.parent / 'best.ckpt'}", "metrics=fid",
                      "num_samples=16", "metrics.real_samples=16", cwd=tmp_path, env=env)
    assert best.returncode == 0, best.stderr[-2000:]
    assert set(json.loads((ckpt.parent / "best.metrics.json").read_text())) == {
        "fid", "num_samples", "real_samples", "checkpoint"}
    assert json.loads((ckpt.parent / "last.metrics.json").read_text())["kid"] == values["kid"]


def test_metrics_of_one_checkpoint_add_up_and_are_dropped_when_it_changes(tmp_path):
    from ganrun.commands.export import final_metrics
    from ganrun.metrics.record import read_metrics, record_metrics

    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"weights")
    record_metrics(ckpt, {"fid": 20.0, "num_samples": 10000})
    record_metrics(ckpt, {"cas": 0.8})  # metrics=cas after metrics=fid: both kept
    assert read_metrics(ckpt) == final_metrics(ckpt) == {"fid": 20.0, "num_samples": 10000,
                                                         "cas": 0.8}
    record_metrics(ckpt, {"fid": 19.0})
    assert read_metrics(ckpt)["fid"] == 19.0
    ckpt.write_bytes(b"resumed, longer")  # a resumed run wrote a new last.ckpt
    assert read_metrics(ckpt) == final_metrics(ckpt) == {}
    record_metrics(ckpt, {"fid": 15.0})
    assert read_metrics(ckpt) == {"fid": 15.0}
    (tmp_path / "last.metrics.json").write_text("{not json")
    assert read_metrics(ckpt) == {}


def write_images(folder, sizes_and_modes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i, (size, mode) in enumerate(sizes_and_modes):
        shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_eval_between_two_folders_of_any_size_and_mode(tmp_path, env):
    # Mixed sizes, grayscale and RGB; a folder against itself: FID ~0, full overlap. (KID's
    # unbiased estimate on a set against itself is not 0: subsets differ, the diagonal is out.)
    write_images(tmp_path / "a", [((40, 30), "RGB")] * 3 + [((20, 20), "L")] * 3)
    proc = run_ganrun("eval", "real=a", "fake=a", "metrics=fid_kid_pr",
                      "metrics.evaluate.inception.scores.kid.subset_size=4", cwd=tmp_path, env=env)
    values = json.loads(proc.stdout.strip().splitlines()[-1])
    assert abs(values["fid"]) < 1e-2 and set(values) >= {"kid", "kid_std"}
    assert values["num_samples"] == values["real_samples"] == 6
    assert values["precision"] == values["recall"] == 1.0


@pytest.mark.parametrize("args, message", [
    (["ckpt=missing.ckpt"], "does not exist"),
    (["real=empty", "fake=empty"], "holds no images"),
    (["real=empty"], "Give either ckpt=PATH"),
    (["ckpt=RUN", "num_samples=1"], "at least 2"),
    (["ckpt=RUN", "metrics=all", "num_samples=16", "metrics.real_samples=16", *SMALL_KID,
      "metrics.evaluate.inception.scores.is.splits=2"], "classifier"),
])
def test_eval_user_errors(args, message, trained, env, tmp_path):
    (tmp_path / "empty").mkdir()
    ckpt = trained[0] / "checkpoints" / "last.ckpt"
    args = [arg.replace("RUN", str(ckpt)) for arg in args]
    proc = run_ganrun("eval", *args, cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_metrics_under_ddp_are_computed_once_and_reach_every_rank(tmp_path, env, mnist_root):
    # Rank 0 computes and broadcasts; a rank left out of a collective would hang the run, and
    # best.ckpt is saved through a barrier that needs the value on both ranks.
    run = tmp_path / "run"
    proc = run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      "hardware=ddp", "hardware.accelerator=cpu", "hardware.devices=2",
                      "metrics=fid", "metrics.num_samples=4", "metrics.real_samples=4",
                      "metrics.every_n_iterations=0", f"hydra.run.dir={run}", cwd=tmp_path, env=env)
    assert [step for step, _ in scalars(run)["metrics/fid"]] == [3]
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert proc.stdout.count("Real features: computed") == 1


def test_eval_in_a_log_prints_real_pass_progress_and_the_cache_path(trained, env, tmp_path):
    ckpt = trained[0] / "checkpoints" / "last.ckpt"
    cache = tmp_path / "cache"  # empty: the real pass runs
    proc = run_ganrun("eval", f"ckpt={ckpt}", "num_samples=4", "metrics.real_samples=8",
                      "metrics.evaluate.inception.batch_size=2", cwd=tmp_path,
                      env={**env, "GANRUN_CACHE_DIR": str(cache)})
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Real features: ")
             and " img (" in line]
    assert [line.split(",")[0] for line in lines] == [
        f"Real features: {n}/8 img ({100 * n // 8}%)" for n in (2, 4, 6, 8)]
    assert f"cached for next time in {cache / 'real_features'}" in proc.stderr


def test_eval_in_a_terminal_shows_the_progress_bar(tmp_path, env):
    import os
    import shlex
    import shutil
    import subprocess
    import sys

    if shutil.which("script") is None:
        pytest.skip("needs script(1) (util-linux) to run ganrun under a pseudo-terminal")
    write_images(tmp_path / "a", [((20, 20), "L")] * 4)
    command = shlex.join([sys.executable, "-m", "ganrun", "eval", "real=a", "fake=a",
                          "metrics.evaluate.inception.batch_size=2"])
    proc = subprocess.run(["script", "-qec", command, "/dev/null"], cwd=tmp_path,
                          env={**os.environ, **env, "COLUMNS": "80"}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = proc.stdout  # the terminal's output: Rich's bar, redrawn in place
    assert "Real features" in out and "4/4" in out and "━" in out  # the bar
    assert "elapsed" in out and "remaining" in out and "img/s" in out
    assert "Real features: 2/4 img" not in out  # no plain lines in a terminal
