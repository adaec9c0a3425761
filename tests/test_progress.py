"""Progress of long steps (ganrun.progress): plain lines in logs, the early estimate line."""

import io

import pytest

from ganrun import progress
from ganrun.metrics.scores import FID
from ganrun.metrics.suite import InceptionMetrics
from test_metrics import StubNetwork, generate


def test_plain_lines_every_ten_percent_when_not_a_terminal():
    out = io.StringIO()
    with progress.track("Real features", total=100, stream=out) as bar:
        for _ in range(20):
            bar.advance(5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("Real features: 10/100 img (10%), ")
    assert lines[-1].startswith("Real features: 100/100 img (100%), ")
    assert all("img/s, elapsed" in line and "remaining" in line for line in lines)


class SlowNetwork(StubNetwork):
    """The stub feature network, slowed down like a big Inception on a small CPU."""

    def forward(self, images):
        import time

        time.sleep(0.05)
        return super().forward(images)


@pytest.mark.parametrize("long_seconds, expected", [(0.01, True), (1e6, False)])
def test_estimate_line_when_the_measured_rate_makes_the_pass_long(
        tmp_path, mnist_root, monkeypatch, capsys, long_seconds, expected):
    from ganrun.data import MNIST

    monkeypatch.setattr("ganrun.metrics.suite.weights_digest", lambda: "stub")
    monkeypatch.setattr(progress, "LONG_SECONDS", long_seconds)
    suite = InceptionMetrics({"fid": FID()}, num_samples=8, batch_size=2,
                             cache_dir=str(tmp_path))
    suite._network = SlowNetwork()
    suite.evaluate(generate, MNIST(root=str(mnist_root), download=False, batch_size=4))
    err = capsys.readouterr().err
    estimate = [line for line in err.splitlines() if line.startswith("Real features: about")]
    whole = [line for line in err.splitlines() if line.startswith("Fake features: about")]
    if expected:
        (line,) = estimate
        assert "more for 16 img at" in line and "metrics.real_samples=N" in line
        # the first pass's estimate counts the real pass that follows it
        assert "and then 16 real images not cached yet" in whole[0]
    else:
        assert not estimate and not whole
    assert "Real features: 16/16 img (100%)" in err  # and the periodic lines
    assert "Fake features: 8/8 img (100%)" in err


def test_training_in_a_log_prints_progress_lines_and_where_the_run_is(tmp_path, mnist_root):
    from conftest import TINY, run_ganrun

    run = tmp_path / "run"
    proc = run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}",
                      "dataset.download=false", "trainer.max_steps=4",
                      f"hydra.run.dir={run}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("iter ")]
    # the first iteration, then every plain_every_seconds (30 s), and the last one
    assert lines[0].startswith("iter 1/4 (25%) | epoch 0 | loss/d ")
    assert lines[-1].startswith("iter 4/4 (100%) | epoch ")
    assert all("img/s | elapsed" in line and "remaining" in line for line in lines)
    assert f"tensorboard --logdir {run}" in proc.stderr


def test_small_steps_stay_quiet_and_large_ones_report(capsys):
    assert list(progress.tracked([1, 2, 3], "Reading jobs", "job", min_total=20)) == [1, 2, 3]
    assert capsys.readouterr().err == ""
    assert len(list(progress.tracked(list(range(40)), "Reading jobs", "job", min_total=20))) == 40
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 10 and err[-1].startswith("Reading jobs: 40/40 job (100%)")
