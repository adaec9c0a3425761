"""Files from others are data: checkpoints never run code, configs in files name only allowed
targets, exports (safetensors + JSON) round-trip bit for bit, and every bad file gets one clear
paragraph and exit 2 with the folders it was in left untouched."""

import json
import os
from pathlib import Path

import pytest
import torch

from conftest import TINY, run_ganrun
from fakedata import write_mnist

TINY_CGAN = [*TINY, "conditioning=embedding", "ema=decay"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 3-iteration conditional DCGAN run with an EMA generator on a tiny MNIST."""
    tmp = tmp_path_factory.mktemp("safe")
    write_mnist(tmp / "data", n_train=64, n_test=16)
    run_ganrun("train", *TINY_CGAN, "dataset=mnist", f"dataset.root={tmp / 'data'}",
               f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    return tmp / "run"


@pytest.fixture(scope="module")
def ckpt(run) -> Path:
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def export_dir(ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "cgan"
    proc = run_ganrun("export", f"ckpt={ckpt}", f"out={out}", cwd=out.parent)
    assert "Exported the generator" in proc.stdout
    return out


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(*args, cwd, message: str, untouched: Path | None = None):
    """Runs ganrun, expecting exit 2 with ``message`` in one clean paragraph."""
    before = snapshot(untouched) if untouched else None
    proc = run_ganrun(*args, cwd=cwd, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
    if untouched:
        assert snapshot(untouched) == before
    return proc


def test_checkpoints_are_plain_data(ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["ganrun"]["format"] == 2 and state["ganrun"]["iteration"] == 3
    assert state["ganrun"]["data_shape"]["class_names"] == [str(d) for d in range(10)]


def test_trusting_a_target_is_the_users_choice(ckpt, tmp_path):
    """A user's own network (tests/fakenets.py stands in for it) loads when the command line or
    the environment trusts its module, never because the file says so."""
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["ganrun"]["config"]["model"]["generator"] = {
        "_target_": "fakenets.LabelledGenerator", "hidden": None, "norm": "none"}
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                if not k.startswith(("task.nets.G.", "task.ema."))}
    from fakenets import LabelledGenerator

    net = LabelledGenerator(8, 1, 28).state_dict()
    checkpoint["state_dict"].update({f"task.nets.G.{k}": v for k, v in net.items()})
    checkpoint["state_dict"].update({f"task.ema.generator.{k}": v for k, v in net.items()})
    own = tmp_path / "own.ckpt"
    torch.save(checkpoint, own)
    tests = Path(__file__).parent
    env = {"PYTHONPATH": f"{tests}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = run_ganrun("sample", f"ckpt={own}", "out=a", "num=2", cwd=tmp_path, env=env,
                      check=False)
    assert proc.returncode == 2 and "trust_targets=[fakenets]" in proc.stderr
    run_ganrun("sample", f"ckpt={own}", "out=b", "num=2", "trust_targets=[fakenets]",
               cwd=tmp_path, env=env)
    run_ganrun("sample", f"ckpt={own}", "out=c", "num=2", cwd=tmp_path,
               env={**env, "GANRUN_TRUST_TARGETS": "fakenets"})
    assert len(list((tmp_path / "c").glob("*.png"))) == 2


def test_an_export_gives_the_checkpoints_images_bit_for_bit(ckpt, export_dir, tmp_path):
    config = json.loads((export_dir / "config.json").read_text())
    assert config["choices"]["ema"] == "decay"  # the EMA generator's weights
    assert config["model"]["_target_"] == "ganrun.inference.model.Sampler"
    assert config["class_names"] == [str(d) for d in range(10)]
    assert config["nets"]["G"]["num_classes"] == 10 and config["model"]["num_classes"] == 10
    from_ckpt = run_ganrun("sample", f"ckpt={ckpt}", "num=12", "format=npz", "out=a",
                           "seed=3", cwd=tmp_path)
    from_export = run_ganrun("sample", f"ckpt={export_dir}", "num=12", "format=npz", "out=b",
                             "seed=3", cwd=tmp_path)
    assert from_ckpt.returncode == from_export.returncode == 0
    assert (tmp_path / "a" / "samples.npz").read_bytes() == \
        (tmp_path / "b" / "samples.npz").read_bytes()


def card(folder: Path) -> tuple[dict, str]:
    import yaml

    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_an_export_carries_a_model_card(ckpt, run, export_dir, tmp_path):
    header, body = card(export_dir)
    assert header["library_name"] == "ganrun" and header["datasets"] == ["mnist"]
    assert header["pipeline_tag"] == "unconditional-image-generation"
    assert {"ganrun", "generation", "dcgan", "bce"} <= set(header["tags"])
    assert "model-index" not in header and "Not measured: run `ganrun eval" in body
    overrides = (run / ".hydra" / "overrides.yaml").read_text()
    assert "ganrun train " in body and "conditioning=embedding" in body and \
        "conditioning=embedding" in overrides
    # The picture is what the card says made it: ganrun sample of the export, seed 0.
    run_ganrun("sample", f"ckpt={export_dir}", "num=16", "seed=0", "format=grid", "out=g",
               cwd=tmp_path)
    assert (export_dir / "sample.png").read_bytes() == (tmp_path / "g" / "grid.png").read_bytes()
    G = __import__("ganrun").load_generator(export_dir)  # the card is not needed to load
    assert G.ganrun["latent_dim"] == 8


def test_a_model_card_names_the_metrics_eval_recorded(tmp_path):
    run = tmp_path / "run"
    run_ganrun("train", "dataset=ring", "model=mlp", "model.latent_dim=8", "trainer.max_steps=10",
               "model.generator.hidden=[16]", "model.discriminator.hidden=[16]",
               f"hydra.run.dir={run}", cwd=tmp_path)
    ckpt = run / "checkpoints" / "last.ckpt"
    run_ganrun("eval", f"ckpt={ckpt}", "metrics=modes", "num_samples=200", cwd=tmp_path)
    recorded = json.loads((run / "checkpoints" / "last.metrics.json").read_text())
    run_ganrun("export", f"ckpt={ckpt}", "out=ring", cwd=tmp_path)
    header, body = card(tmp_path / "ring")
    [result] = header["model-index"][0]["results"]
    assert result["dataset"]["name"] == "ring"
    assert {m["type"]: m["value"] for m in result["metrics"]} == \
        {k: v for k, v in recorded.items() if k in ("modes", "hq")}
    assert "| modes |" in body and "Measured by `ganrun eval`" in body
    assert not (tmp_path / "ring" / "sample.png").exists()  # 2-D points are no picture


def test_python_api(ckpt, export_dir):
    import ganrun
    from ganrun.inference.loading import load_model

    G = ganrun.load_generator(export_dir)
    assert isinstance(G, torch.nn.Module) and not G.training
    assert G.ganrun["latent_dim"] == 8 and G.ganrun["num_classes"] == 10
    images = ganrun.generate_images(G, 6, seed=3, labels=4)
    assert images.shape == (6, 1, 28, 28) and images.abs().max() <= 1
    same = ganrun.generate_images(ganrun.load_generator(ckpt), 6, seed=3, labels=4)
    assert torch.equal(images, same)
    close = ganrun.generate_images(G, 64, seed=1, truncation=0.5)
    far = ganrun.generate_images(G, 64, seed=1, truncation=3.0)
    assert close.std(0).mean() < far.std(0).mean()  # less variety, as the trick trades
    # the EMA copy, not the raw generator, is what a checkpoint samples from
    model = load_model(ckpt)
    stored = torch.load(ckpt, weights_only=True)["state_dict"]
    ema = {k.removeprefix("task.ema.generator."): v for k, v in stored.items()
           if k.startswith("task.ema.generator.")}
    assert not model.generator.training and ema
    assert all(torch.equal(v, ema[k]) for k, v in model.generator.state_dict().items())


def test_export_refuses_to_overwrite(ckpt, export_dir, tmp_path):
    refused("export", f"ckpt={ckpt}", f"out={export_dir}", cwd=tmp_path,
            message="overwrite=true", untouched=export_dir)


def damaged_export(export_dir: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in export_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    damage(copy)
    return copy


def edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_checkpoint_from_before_tasks_still_loads_and_resumes(ckpt, tmp_path):
    """Format 1 (no `format` field, G and D at the top of the module, `d_updates`), as ganrun
    wrote it before the task runner: sampling works and training continues from it."""
    checkpoint = torch.load(ckpt, weights_only=True)
    section = checkpoint["ganrun"]
    section["d_updates"] = section.pop("counters")["D"]
    for key in ("format", "lr_scale"):
        section.pop(key)
    old_names = {"task.nets.G.": "generator.", "task.nets.D.": "discriminator.",
                 "task.ema.": "ema.", "task.fixed_z": "fixed_z"}
    checkpoint["state_dict"] = {
        next((old + k.removeprefix(new) for new, old in old_names.items()
              if k.startswith(new)), k): v for k, v in checkpoint["state_dict"].items()}
    # and its logger was Lightning's own, before ganrun.loggers
    section["config"]["logger"] = {
        "_target_": "pytorch_lightning.loggers.TensorBoardLogger", "save_dir": "x",
        "name": None, "version": "", "default_hp_metric": False}
    legacy = tmp_path / "legacy.ckpt"
    torch.save(checkpoint, legacy)
    run_ganrun("sample", f"ckpt={legacy}", "num=2", "out=a", cwd=tmp_path)
    run = tmp_path / "continued"
    root = json.loads(json.dumps(section["config"]["dataset"]["root"]))
    run_ganrun("train", *TINY_CGAN, "dataset=mnist", f"dataset.root={root}",
               f"ckpt_path={legacy}", "trainer.max_steps=4", f"hydra.run.dir={run}", cwd=tmp_path)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["ganrun"]
    assert state["iteration"] == 4 and state["counters"] == {"batches": 4, "D": 4, "G": 4}
