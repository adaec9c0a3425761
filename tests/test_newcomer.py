"""What a newcomer meets: the progress of epoch-based runs and what stopped them, the help that
names the keys an evaluation's cost depends on and a model's own sampling keys, the warnings
of small FIDs, the Python API refusing what the command line refuses."""

import re

import numpy as np
import pytest
import torch

from badinput import TINY_GEN, run_cli
from fakedata import write_mnist, write_png


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    root = tmp_path_factory.mktemp("newcomer")
    write_mnist(root, n_train=64, n_test=16)  # batches of 8: 8 per epoch
    return root


def train(mnist, tmp_path, *extra):
    args = [a for a in TINY_GEN if not a.startswith("trainer.max_steps")]
    result = run_cli("train", *args, "dataset=mnist", f"dataset.root={mnist}",
                     "callbacks.progress.refresh_every_n_iterations=2",
                     f"hydra.run.dir={tmp_path / 'run'}", *extra, cwd=tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.parametrize("extra, total, reason", [
    # epochs alone: the total is the epoch's iterations, not "None" or "?"
    (["trainer.max_epochs=1", "trainer.max_steps=null"], 8, "trainer.max_epochs=1 reached"),
    # both: whichever ends first (here the epoch, not the default 5000 steps)
    (["trainer.max_epochs=1", "trainer.max_steps=5000"], 8, "trainer.max_epochs=1 reached"),
    # n_critic 2: an iteration every second batch
    (["trainer.max_epochs=1", "trainer.max_steps=null", "trainer.n_critic=2"], 4,
     "trainer.max_epochs=1 reached"),
    (["trainer.max_epochs=3", "trainer.max_steps=5"], 5, "trainer.max_steps=5 reached"),
])
def test_progress_counts_to_the_real_end_and_says_what_stopped_it(mnist, tmp_path, extra, total,
                                                                  reason):
    output = train(mnist, tmp_path, *extra)
    counts = re.findall(r"iter (\d+)/(\S+)", output)
    assert counts and all(of == str(total) for _, of in counts), counts
    assert counts[-1] == (str(total), str(total))
    rows = [line for line in output.splitlines() if re.search(r"iter \d+/", line)]
    assert "remaining 0 s" in rows[-1], rows[-1]  # the last progress row, at the end
    assert f"Training finished: {reason}" in output
    for noise in ("max_epochs=1` reached", "GPU available", "TPU available", "Total FLOPs"):
        assert noise not in output


def test_eval_help_names_the_keys_an_evaluation_costs(tmp_path):
    result = run_cli("eval", "--help", cwd=tmp_path)
    for key in ("num_samples=N", "metrics.real_samples=N",
                "metrics.evaluate.translation.classifier_steps=N",
                "metrics.evaluate.paired.fid_samples=N", "device=cuda"):
        assert key in result.stdout, key


def test_sample_help_with_a_checkpoint_lists_the_models_own_keys(mnist, tmp_path):
    train(mnist, tmp_path, "trainer.max_steps=2")
    result = run_cli("sample", f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
                     "--help", cwd=tmp_path)
    assert result.code == 0
    assert "This model is an image generator" in result.stdout
    assert re.search(r"label=null\s+conditional models", result.stdout)


def test_generate_images_refuses_labels_for_an_unconditional_model(mnist, tmp_path):
    from ganrun import generate_images, load_generator
    from ganrun.errors import UserError

    train(mnist, tmp_path, "trainer.max_steps=2")
    G = load_generator(tmp_path / "run" / "checkpoints" / "last.ckpt")
    with pytest.raises(UserError, match="unconditional"):
        generate_images(G, 4, labels=6)
    with pytest.raises(UserError, match="unconditional"):
        generate_images(G, 4, labels=torch.tensor([1, 2, 3, 4]))


def test_small_fid_against_statistics_is_counted_and_warned(tmp_path, torch_home):
    stats = tmp_path / "stats.npz"
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3000, 2048))
    np.savez(stats, mu=features.mean(0), sigma=np.cov(features, rowvar=False))
    for i in range(3):
        write_png(tmp_path / "fake" / f"{i}.png", (28, 28), (40 * i, 0, 0))
    result = run_cli("eval", f"real={stats}", f"fake={tmp_path / 'fake'}", cwd=tmp_path,
                     env={"TORCH_HOME": str(torch_home)})
    assert result.code == 0, result.stderr[-3000:]
    text = " ".join(result.stderr.split())
    assert "FID from 3 generated and the statistics of" in text
    assert "strongly biased at that size" in text
