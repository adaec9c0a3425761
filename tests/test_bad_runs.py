"""Bad inputs around a run's files: resuming with settings a resume cannot honour, folders that
cannot be written, a full disk, damaged caches (see tests/badinput.py for what each case
asserts)."""

import errno
import os
import shutil

import pytest
import torch

from badinput import TINY_GEN, box, case, cases, run_case, run_cli, shared  # noqa: F401
from conftest import scalars

RESUME, DISK, CACHES = "resume", "disk", "caches"


def trained(box, shared, *extra) -> list[str]:
    """A finished 3-iteration run in runs/r; returns the arguments that trained it."""
    args = [*TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}", "seed=1",
            f"hydra.run.dir={box.root / 'runs' / 'r'}", *extra]
    result = run_cli("train", *args, cwd=box.work, env=box.env)
    assert result.code == 0, result.stderr[-3000:]
    return args


def resume(box, shared, *changes) -> list[str]:
    trained(box, shared)
    return ["train", "resume=true", f"hydra.run.dir={box.root / 'runs' / 'r'}",
            "trainer.max_steps=5", *changes]


def last_checkpoint_kept(box, result, shared):
    state = torch.load(box.root / "runs" / "r" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["iteration"] == 3


REFUSED = [
    ("changed_loss", "loss=hinge", "loss._target_ is"),
    ("changed_batch_size", "dataset.batch_size=4", "dataset.batch_size is 8 in the checkpoint, 4"),
    ("changed_width", "model.generator.width=16", "model.generator.width is 8 in the checkpoint"),
    ("changed_seed", "seed=2", "seed is 1 in the checkpoint, 2 now"),
    ("changed_n_critic", "trainer.n_critic=2", "trainer.n_critic is 1"),
    ("changed_task_option", "ema=decay", "ema is None in the checkpoint"),
    ("changed_optimizer_class", "optimizer=rmsprop", "optimizer.generator._target_"),
]

for name, change, text in REFUSED:
    case(RESUME, name, message=[text, "cannot change", "optimizer.lr"],
         check=last_checkpoint_kept)(
        lambda box, shared, change=change: resume(box, shared, change))


def new_rate_used(box, result, shared):
    logged = dict(scalars(box.root / "runs" / "r")["lr/g"])
    assert logged[3] == pytest.approx(2e-4) and logged[5] == pytest.approx(1e-3), logged
    config = (box.root / "runs" / "r" / ".hydra" / "config.yaml").read_text()
    assert "lr: 0.001" in config  # recorded and used alike


@case(RESUME, "changed_learning_rate_is_applied", code=0, message="lr 0.0002 -> 0.001",
      check=new_rate_used)
def _(box, shared):
    return resume(box, shared, "optimizer.lr=1e-3", "callbacks.scalars.every_n_iterations=1")


@case(RESUME, "nothing_to_resume", message="no checkpoint to resume")
def _(box, shared):
    return ["train", *TINY_GEN, "resume=true", f"hydra.run.dir={box.root / 'runs' / 'none'}"]


@case(RESUME, "resume_false_over_a_checkpoint", message="would overwrite it",
      check=last_checkpoint_kept)
def _(box, shared):
    args = trained(box, shared)
    return ["train", *args, "resume=false"]


@case(RESUME, "ckpt_path_to_a_damaged_file", message="cannot be read",
      check=last_checkpoint_kept)
def _(box, shared):
    trained(box, shared)
    (box.src / "bad.ckpt").write_bytes(b"PK\x03\x04 not a zip")
    return ["train", *TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}",
            f"ckpt_path={box.src / 'bad.ckpt'}", f"hydra.run.dir={box.root / 'runs' / 'r'}"]


@case(RESUME, "ckpt_path_missing", message="does not exist")
def _(box, shared):
    return ["train", *TINY_GEN, f"ckpt_path={box.src / 'gone.ckpt'}",
            "hydra.run.dir=../runs/new"]


# Disk: folders that cannot be written, files in the way, a full disk.

def a_file_in_the_way(box):
    (box.src / "a_file").write_text("x")
    return box.src / "a_file" / "inside"


@case(DISK, "sample_into_a_file", message="Cannot write to the output folder")
def _(box, shared):
    return ["sample", f"ckpt={shared.gen_ckpt}", f"out={a_file_in_the_way(box)}", "num=2"]


@case(DISK, "export_into_a_file", message="Cannot write to the output folder")
def _(box, shared):
    return ["export", f"ckpt={shared.gen_ckpt}", f"out={a_file_in_the_way(box)}"]


@case(DISK, "translate_into_a_file", message="Cannot write")
def _(box, shared):
    from fakedata import write_png

    write_png(box.src / "in" / "a.png", (16, 16), (0, 0, 0))
    return ["translate", f"ckpt={shared.cycle_ckpt}", f"in={box.src / 'in'}",
            f"out={a_file_in_the_way(box)}"]


@case(DISK, "train_into_a_file", message=["cannot write the output folder", "hydra.run.dir"])
def _(box, shared):
    return ["train", *TINY_GEN, f"hydra.run.dir={a_file_in_the_way(box)}"]


def untouched_samples(box, result, shared):
    assert (box.out / "s" / "sample_000000.png").read_bytes() == b"mine"


@case(DISK, "sample_over_existing_files", message="overwrite=true", check=untouched_samples)
def _(box, shared):
    (box.out / "s").mkdir()
    (box.out / "s" / "sample_000000.png").write_bytes(b"mine")
    return ["sample", f"ckpt={shared.gen_ckpt}", f"out={box.out / 's'}", "num=2"]


@case(DISK, "export_over_an_export", message="overwrite=true")
def _(box, shared):
    shutil.copytree(shared.gen_export, box.out / "e")
    return ["export", f"ckpt={shared.gen_ckpt}", f"out={box.out / 'e'}"]


@case(DISK, "fid_stats_over_a_file", message="overwrite=true",
      check=lambda box, result, shared: (box.out / "stats.npz").read_bytes() == b"mine")
def _(box, shared):
    (box.out / "stats.npz").write_bytes(b"mine")
    return ["fid-stats", "mnist", f"out={box.out / 'stats.npz'}", f"root={shared.mnist}"]


def printed_and_warned(box, result, shared):
    import json

    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert "modes_covered" in values or values, values


@case(DISK, "eval_where_the_record_cannot_be_kept", code=0,
      message="Could not keep the metrics", check=printed_and_warned)
def _(box, shared):
    folder = box.src / "ckpt"
    folder.mkdir()
    shutil.copy(shared.toy_ckpt, folder / "last.ckpt")
    (folder / "last.metrics.json").mkdir()  # in the way of the record, even for root
    return ["eval", f"ckpt={folder / 'last.ckpt'}", "metrics=modes", "num_samples=200"]


def previous_checkpoint_intact(box, result, shared):
    state = torch.load(box.root / "runs" / "r" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["iteration"] == 3


@case(DISK, "full_disk_while_saving", message=["disk is full", "intact"],
      check=previous_checkpoint_intact)
def _(box, shared):
    trained(box, shared)
    import pytorch_lightning as pl

    original = pl.Trainer.save_checkpoint

    def full(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    pl.Trainer.save_checkpoint = full
    box.restore = lambda: setattr(pl.Trainer, "save_checkpoint", original)
    return ["train", "resume=true", f"hydra.run.dir={box.root / 'runs' / 'r'}",
            "trainer.max_steps=5", "callbacks.checkpoint.last_every_n_iterations=1"]


# Caches: damaged files are detected and rebuilt; an unwritable cache costs time, not results.

def coverage_eval(shared, *extra):
    return ["eval", f"ckpt={shared.gen_ckpt}", "metrics=class_coverage", "num_samples=20",
            "+metrics.evaluate.class_coverage.train_steps=3", *extra]


@case(CACHES, "damaged_classifier_cache", code=0, message="Ignoring the classifier cache")
def _(box, shared):
    result = box.run(*coverage_eval(shared))
    assert result.code == 0, result.stderr[-2000:]
    (cached,) = (box.home / ".cache" / "ganrun").rglob("*.pt")
    cached.write_bytes(cached.read_bytes()[:100])
    return coverage_eval(shared)


@case(CACHES, "unwritable_classifier_cache", code=0, message="Cannot write the classifier cache")
def _(box, shared):
    (box.src / "cache_file").write_text("a file where the cache folder should be")
    return coverage_eval(shared, f"paths.cache_dir={box.src / 'cache_file'}")


@case(CACHES, "damaged_fid_weights", message=["weights-inception-2015-12-05", "fid-weights"])
def _(box, shared):
    folder = box.home / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "weights-inception-2015-12-05-6726825d.pth").write_bytes(b"damaged")
    return ["eval", f"ckpt={shared.gen_ckpt}", "metrics=fid", "num_samples=4",
            "metrics.real_samples=4"]


@pytest.mark.parametrize("c", cases(RESUME) + cases(DISK) + cases(CACHES))
def test_bad_run_input(c, box, shared):
    box.restore = lambda: None
    box.env["TORCH_HOME"] = str(box.home / "torch")
    try:
        run_case(c, box, shared)
    finally:
        box.restore()
