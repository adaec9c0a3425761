"""What a newcomer meets, round three: a run resumed at its end keeps (or measures) its result,
so that a study never drops a finished trial; metrics that cannot run fail at start-up; the
default metrics of every task work; stops say how to continue."""

import json
from pathlib import Path

import pytest
import torch

from badinput import TINY_GEN, run_cli
from fakedata import write_mnist

RING = ["dataset=ring", "model=mlp", "hardware=cpu", "model.latent_dim=8",
        "dataset.batch_size=32", "model.generator.hidden=[16]",
        "model.discriminator.hidden=[16]", "callbacks.progress.refresh_every_n_iterations=50",
        "seed=0"]
MODES = ["metrics=modes", "metrics.num_samples=200", "optimized_metric=metrics/modes"]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    root = tmp_path_factory.mktemp("round3")
    write_mnist(root, n_train=64, n_test=16)
    return root


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def test_a_run_resumed_at_its_end_keeps_the_result_its_checkpoint_recorded(tmp_path):
    run = tmp_path / "run"
    first = run_cli("train", *RING, *MODES, "trainer.max_steps=8",
                    "metrics.every_n_iterations=4", f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.code == 0, first.text[-2000:]
    measured = status(run)["objective"]
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["metrics"]["metrics/modes"] == measured
    again = run_cli("train", "resume=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert again.code == 0 and "nothing to train" in again.text
    assert status(run)["status"] == "finished" and status(run)["objective"] == measured


def test_a_run_resumed_at_its_end_without_its_last_evaluation_measures_it(tmp_path):
    """A stop during the last evaluation leaves a checkpoint at the end without the result:
    continuing measures it (what `ganrun tune` needs to keep a finished trial's value), and
    trains nothing more."""
    run = tmp_path / "run"
    assert run_cli("train", *RING, "trainer.max_steps=8", f"hydra.run.dir={run}",
                   cwd=tmp_path).code == 0  # no metrics: the checkpoint at 8 holds none
    before = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    again = run_cli("train", "resume=true", f"hydra.run.dir={run}", *MODES, cwd=tmp_path)
    assert again.code == 0, again.text[-2000:]
    assert "its last evaluation was not finished: measuring it now" in again.text
    assert "Iteration 8: modes" in again.text
    assert isinstance(status(run)["objective"], float)
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["ganrun"]["iteration"] == 8
    for key, value in before["state_dict"].items():
        assert torch.equal(value, after["state_dict"][key]), key  # no update


def test_a_metric_that_cannot_run_fails_at_start_up(mnist, tmp_path):
    result = run_cli("train", *TINY_GEN, "dataset=mnist", f"dataset.root={mnist}",
                     "metrics=fid", "metrics.every_n_iterations=2", "metrics.num_samples=20",
                     "hydra.run.dir=run", cwd=tmp_path,
                     env={"TORCH_HOME": str(tmp_path / "empty_torch_home")})
    assert result.code == 2 and "The FID Inception weights are not in" in result.text
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_a_study_trial_stopped_says_to_run_tune_again(mnist, tmp_path):
    from ganrun.runner.training import how_to_continue

    (tmp_path / "trial.json").write_text("{}")
    assert "run the same `ganrun tune` command again" in how_to_continue(tmp_path)
    assert "ganrun train resume=true" in how_to_continue(tmp_path / "other")


def test_eval_points_to_data_root_never_to_a_hydra_key(tmp_path):
    from badinput import Shared

    shared = Shared(tmp_path / "shared")
    export = shared.gen_export
    result = run_cli("eval", f"ckpt={export}", "metrics=class_coverage", "num_samples=10",
                     cwd=tmp_path)  # an export's data set is looked for in data/: absent here
    assert result.code == 2 and "data_root=" in result.text, result.text[-1500:]
    typo = run_cli("eval", f"ckpt={export}", "dataset.root=/somewhere", cwd=tmp_path)
    assert typo.code == 2 and "hydra." not in typo.text and "data_root" in typo.text, typo.text


def test_an_inpainting_card_keeps_the_baseline_apart_and_eval_updates_it(tmp_path):
    import yaml

    from badinput import Shared

    shared = Shared(tmp_path / "shared")
    export = tmp_path / "export"
    assert run_cli("export", f"ckpt={shared.inpaint_ckpt}", f"out={export}", cwd=tmp_path).code == 0
    assert "Not measured" in (export / "README.md").read_text()
    result = run_cli("eval", f"ckpt={export}", "metrics=paired", "num_samples=4",
                     "metrics.evaluate.paired.fid_samples=0", f"data_root={shared.mnist}",
                     cwd=tmp_path)
    assert result.code == 0, result.text[-2000:]
    card = (export / "README.md").read_text()  # written again with the new metrics
    header = yaml.safe_load(card.split("---")[1])
    types = {m["type"] for m in header["model-index"][0]["results"][0]["metrics"]}
    assert "psnr" in types and not any(t.endswith("_fill") for t in types)
    assert "The non-learnt baseline (fill) on the same images" in card
    assert "first test pairs of the data set" in card and "real images" not in card
