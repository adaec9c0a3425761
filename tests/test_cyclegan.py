"""CycleGAN on the task runner: training on an unpaired folder and on the offline Fashion-MNIST
domains, the reference losses and schedule, exact resume after SIGKILL, DDP, bf16, and
`ganrun translate`."""

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from conftest import image_steps, run_ganrun, scalars
from fakenets import Scale
from test_unpaired_data import write_unpaired

TINY_CYCLEGAN = ["experiment=cyclegan_256", "debug=tiny", "dataset.load_size=18",
                 "dataset.crop_size=16", "dataset.batch_size=2", "dataset.num_workers=0",
                 "seed=3"]
TAGS = {"loss/g", "loss/d", "loss/d_a", "loss/d_b", "loss/cycle_a", "loss/cycle_b",
        "loss/identity_a", "loss/identity_b", "lr/g", "lr/d", "grad_norm/g", "grad_norm/d"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_unpaired(tmp_path_factory.mktemp("unpaired") / "horse2zebra")


def train(folder, run, *extra, cwd, check=True, env=None):
    return run_ganrun("train", *TINY_CYCLEGAN, f"dataset.root={folder}",
                      f"hydra.run.dir={run}", *extra, cwd=cwd, check=check, env=env)


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory) -> Path:
    """4 iterations on the written folder, the learning rate decaying per iteration."""
    run = tmp_path_factory.mktemp("cyclegan") / "run"
    train(folder, run, "trainer.max_steps=4", "scheduler.unit=iteration",
          "scheduler.n_constant=2", "scheduler.n_decay=2", cwd=run.parent)
    return run


def test_trains_on_an_unpaired_folder_with_the_reference_tags(trained):
    logged = scalars(trained)
    assert TAGS <= set(logged)
    assert [step for step, _ in logged["loss/g"]] == [1, 2, 3, 4]
    # the reference rule 1 - max(0, t + 1 - n_constant) / (n_decay + 1), t = 0, 1, 2, 3
    assert [v for _, v in logged["lr/g"]] == pytest.approx([2e-4, 2e-4, 2e-4 * 2 / 3,
                                                            2e-4 / 3])
    assert image_steps(trained) == [1, 4]
    grid = Image.open(trained / "samples" / "step_0000004.png")
    assert grid.size[1] > grid.size[0]  # six rows of two images
    state = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["counters"] == {"batches": 4, "G": 4, "D": 4}
    assert {k.split(".")[2] for k in state["state_dict"] if k.startswith("task.nets.")} == \
        {"G_AB", "G_BA", "D_A", "D_B"}
    assert state["state_dict"]["task.pool_a.count"] == 8  # 4 batches of 2 fakes, in the pool
    assert [s["param_groups"][0]["lr"] for s in state["optimizer_states"]] == \
        pytest.approx([2e-4 / 3, 2e-4 / 3])


def test_linear_decay_is_the_reference_formula():
    from ganrun.training.schedules import LinearDecay

    decay = LinearDecay(n_constant=100, n_decay=100, unit="epoch")
    # The reference's 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1), worked out by hand
    expected = {0: 1.0, 50: 1.0, 99: 1.0, 100: 100 / 101, 101: 99 / 101, 150: 50 / 101,
                199: 1 / 101, 250: 0.0}
    for epoch, factor in expected.items():
        assert decay.factor(epoch) == pytest.approx(factor), epoch


def test_cycle_and_identity_losses_equal_hand_computed_values():
    from ganrun.training.losses import LeastSquares
    from ganrun.tasks.base import Phase, Step
    from ganrun.tasks.cyclegan import CycleGAN

    task = CycleGAN(Scale(2.0), Scale(0.25), Scale(1.0), Scale(1.0), LeastSquares(scale=1.0),
                    channels_a=1, channels_b=1, image_size=2, pool_size=0)
    a, b = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), -0.2)
    batch = task.begin_batch({"A": a, "B": b}, Step())
    loss, stats = task.phase_loss(Phase("G", "G"), batch, Step())
    # fake_b = 2a = 1, rec_a = 0.25 * 1 = 0.25; fake_a = 0.25 b = -0.05, rec_b = -0.1
    assert stats["loss/cycle_a"].item() == pytest.approx(10 * 0.25)
    assert stats["loss/cycle_b"].item() == pytest.approx(10 * 0.1)
    # identity: G_BA(a) = 0.125 vs a = 0.5; G_AB(b) = -0.4 vs b = -0.2; x 0.5 x 10
    assert stats["loss/identity_a"].item() == pytest.approx(5 * 0.375)
    assert stats["loss/identity_b"].item() == pytest.approx(5 * 0.2)
    # LSGAN as plain MSE on D's outputs (D = identity here): (1 - 1)^2 and (-0.05 - 1)^2
    assert stats["loss/g_ab"].item() == pytest.approx(0.0)
    assert stats["loss/g_ba"].item() == pytest.approx(1.05 ** 2)
    assert loss.item() == pytest.approx(2.5 + 1.0 + 1.875 + 1.0 + 1.05 ** 2)
    _, d_stats = task.phase_loss(Phase("D", "D"), batch, Step())
    # D_B: 0.5 * ((1 - 1)^2 + 1^2) on real b = -0.2 and fake b = 1: 0.5 * (1.44 + 1)
    assert d_stats["loss/d_b"].item() == pytest.approx(0.5 * (1.2 ** 2 + 1.0))


def test_resume_at_an_epoch_end_is_exact(folder, tmp_path):
    """Epochs of 2 batches: a run stopped after iteration 4 continues into epoch 3 exactly (the
    loader must not draw its workers' seed from the global RNG at each epoch start)."""
    common = ["callbacks.checkpoint.last_every_n_iterations=1", "task.pool_size=3"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(folder, whole, "trainer.max_steps=6", *common, cwd=tmp_path)
    train(folder, split, "trainer.max_steps=4", *common, cwd=tmp_path)
    run_ganrun("train", "resume=true", "trainer.max_steps=6", f"hydra.run.dir={split}",
               cwd=tmp_path)
    for tag in ("loss/g", "loss/d_a", "loss/d_b"):
        assert scalars(whole)[tag] == scalars(split)[tag], tag


def test_translate_writes_one_output_per_input_with_the_same_names(trained, tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    Image.new("RGB", (45, 30), (200, 10, 10)).save(source / "wide.png")
    Image.new("L", (9, 17), 128).save(source / "sub" / "odd.jpg")
    Image.new("RGB", (16, 16), (0, 0, 255)).save(source / "square.png")
    ckpt = trained / "checkpoints" / "last.ckpt"
    proc = run_ganrun("translate", f"ckpt={ckpt}", "in=in", "out=out", "direction=BtoA",
                      "batch_size=2", cwd=tmp_path)
    assert "Translated 3 image(s) BtoA" in proc.stdout
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.*"))
    assert written == ["square.png", "sub/odd.jpg", "wide.png"]
    assert Image.open(tmp_path / "out" / "wide.png").size == (45, 30)
    assert Image.open(tmp_path / "out" / "sub" / "odd.jpg").size == (9, 17)
    refused = run_ganrun("translate", f"ckpt={ckpt}", "in=in", "out=out", cwd=tmp_path,
                         check=False)
    assert refused.returncode == 2 and "overwrite=true" in refused.stderr


@pytest.mark.parametrize("args, message", [
    (["direction=sideways"], "direction=sideways is not a direction"),
    (["in=nowhere"], "does not exist"),
])
def test_translate_refuses_bad_requests(trained, tmp_path, args, message):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "x.png")
    proc = run_ganrun("translate", f"ckpt={trained / 'checkpoints' / 'last.ckpt'}", "in=in",
                      "out=out", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and message in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_bad_training_inputs_get_one_paragraph(folder, tmp_path, mnist_root):
    missing = tmp_path / "no_b"
    write_unpaired(missing, {"trainA": 2, "testA": 1, "testB": 1})  # (fewer than a batch: fine)
    proc = train(missing, tmp_path / "r1", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "trainB" in proc.stderr and "Traceback" not in proc.stderr
    proc = train(folder, tmp_path / "r2", "dataset.channels_a=1", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "task.lambda_identity=0" in " ".join(proc.stderr.split())
    proc = run_ganrun("train", "task=cyclegan", "model=cyclegan", "hardware=cpu",
                      "dataset=mnist", f"dataset.root={mnist_root}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "two unpaired domains" in proc.stderr


def test_eval_of_a_translator_reports_fid_against_the_untranslated_baseline(
        trained, tmp_path, with_torch_home):
    proc = run_ganrun("eval", f"ckpt={trained / 'checkpoints' / 'last.ckpt'}",
                      "metrics=translation", "num_samples=2", cwd=tmp_path)
    values = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert {"fid_ab", "fid_identity", "num_samples"} <= set(values)
    assert values["num_samples"] == 2
    refused = run_ganrun("eval", f"ckpt={trained / 'checkpoints' / 'last.ckpt'}", "metrics=fid",
                         cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "metrics=translation" in refused.stderr


def test_label_preservation_of_the_true_map_beats_the_identity(fashion_root, with_torch_home,
                                                               tmp_path, monkeypatch):
    """On the offline domains (B: the other half, inverted), a translator that inverts keeps
    the labels about as well as the B classifier reads real B; the identity map does not.
    The domain-B classifier is cached: the next evaluation does not train it again."""
    from ganrun.data import FashionDomains
    from ganrun.metrics.translation import TranslationMetrics
    from ganrun.tasks.cyclegan import CycleTranslator

    class Inverter(CycleTranslator):
        def __init__(self):
            super().__init__({"G_AB": nn.Identity(), "G_BA": nn.Identity()}, {})

        def translate(self, images, direction="AtoB"):
            return -images

    data = FashionDomains(root=str(fashion_root), download=False, transform="invert",
                          batch_size=64)
    data.setup()
    metrics = lambda: TranslationMetrics(num_samples=24, classifier_steps=80,  # noqa: E731
                                         cache_dir=str(tmp_path))
    first = metrics()
    values = first.evaluate_model(Inverter(), data)
    assert values["label_preservation"] > values["label_preservation_identity"] + 0.3
    assert abs(values["label_preservation"] - values["label_accuracy_b"]) < 0.2
    assert values["fid_ab"] < values["fid_identity"] and values["num_samples"] == 24
    assert values["label_samples"] == 5000  # every test image of A: accuracies are cheap
    monkeypatch.setattr("ganrun.metrics.classifier.train", None)  # training again would fail
    again = metrics().domain_b_classifier(data).state_dict()
    trained = first.domain_b_classifier(data).state_dict()
    assert again.keys() == trained.keys()
    assert all(torch.equal(again[key], trained[key]) for key in trained)


def test_an_exported_translator_translates_like_its_checkpoint(trained, tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (20, 12), (30, 200, 90)).save(tmp_path / "in" / "x.png")
    ckpt = trained / "checkpoints" / "last.ckpt"
    run_ganrun("export", f"ckpt={ckpt}", "out=export", cwd=tmp_path)
    config = __import__("json").loads((tmp_path / "export" / "config.json").read_text())
    assert config["model"]["_target_"].endswith("CycleTranslator")
    assert set(config["nets"]) == {"G_AB", "G_BA"}
    for source, out in ((ckpt, "a"), (tmp_path / "export", "b")):
        run_ganrun("translate", f"ckpt={source}", "in=in", f"out={out}", cwd=tmp_path)
    assert (tmp_path / "a" / "x.png").read_bytes() == (tmp_path / "b" / "x.png").read_bytes()
    refused = run_ganrun("sample", f"ckpt={tmp_path / 'export'}", "out=c", cwd=tmp_path,
                         check=False)
    assert refused.returncode == 2 and "ganrun translate" in refused.stderr
