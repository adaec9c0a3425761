"""Bad inputs, files from others: checkpoints and exports that are damaged, foreign, newer, or
edited to run code or write files. Every field of such a file is data (see tests/badinput.py
for what each case asserts)."""

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from badinput import box, case, cases, run_case, shared  # noqa: F401 (fixtures)

KIND = "files"


def damaged_checkpoint(box, shared, edit, name="bad.ckpt") -> Path:
    checkpoint = torch.load(shared.gen_ckpt, weights_only=True)
    edit(checkpoint)
    path = box.src / name
    torch.save(checkpoint, path)
    return path


def sample(path: Path) -> list[str]:
    return ["sample", f"ckpt={path}", "out=../out/x", "num=2"]


def config_edit(change):
    return lambda checkpoint: change(checkpoint["ganrun"]["config"])


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def marker_absent(box, result, shared):
    assert not (box.canary / "PWNED").exists()


@case(KIND, "pickled_code_in_a_checkpoint", message="tried to run code", check=marker_absent)
def _(box, shared):
    def edit(checkpoint):
        checkpoint["ganrun"]["config"]["note"] = Payload(box.canary / "PWNED")
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "plain_pickle_file", message=["is a plain pickle file", "did not open it"],
      absent="Weights only load failed")
def _(box, shared):
    path = box.src / "model.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": {}}))
    return sample(path)


@case(KIND, "truncated_checkpoint", message="cannot be read")
def _(box, shared):
    path = box.src / "cut.ckpt"
    path.write_bytes(shared.gen_ckpt.read_bytes()[:5000])
    return sample(path)


@case(KIND, "empty_checkpoint", message="cannot be read")
def _(box, shared):
    path = box.src / "empty.ckpt"
    path.write_bytes(b"")
    return sample(path)


@case(KIND, "random_bytes_checkpoint", message="cannot be read")
def _(box, shared):
    path = box.src / "noise.ckpt"
    path.write_bytes(bytes(range(256)) * 40)
    return sample(path)


@case(KIND, "torch_file_without_ganrun_section", message="is not a ganrun checkpoint")
def _(box, shared):
    path = box.src / "other.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    return sample(path)


@case(KIND, "newer_checkpoint_format", message=["newer ganrun", "Upgrade ganrun"])
def _(box, shared):
    return sample(damaged_checkpoint(box, shared, lambda c: c["ganrun"].update(format=99)))


@case(KIND, "checkpoint_naming_os_system", message="belongs to Python's standard library",
      absent="trust_targets")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(_target_="os.system"))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "checkpoint_naming_an_unknown_package",
      message=["asks to build 'evil_pkg.Net'", "No installed package provides 'evil_pkg'"],
      absent="trust_targets=[evil_pkg]")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(_target_="evil_pkg.Net"))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "trusting_os_does_not_allow_it", message="cannot be trusted")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(_target_="os.system"))
    return [*sample(damaged_checkpoint(box, shared, edit)), "trust_targets=[os]"]


@case(KIND, "checkpoint_with_a_nested_foreign_target", message="asks to build 'shutil.rmtree'")
def _(box, shared):
    edit = config_edit(lambda c: c["loss"].update(extra={"_target_": "shutil.rmtree",
                                                         "path": str(box.canary)}))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "checkpoint_with_an_interpolation", message="holds an interpolation",
      absent=str(Path.home()))
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(norm="${oc.env:HOME}"))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "checkpoint_building_its_generator_partially", message="partially")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(_partial_=True))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "checkpoint_with_positional_arguments", message="positional arguments")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(_args_=[1, 2]))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "checkpoint_weights_of_another_model", message="does not fit the model")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(width=16))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "checkpoint_with_a_mistyped_field", message="`data_shape.channels` is 'three'")
def _(box, shared):
    return sample(damaged_checkpoint(
        box, shared, lambda c: c["ganrun"]["data_shape"].update(channels="three")))


@case(KIND, "checkpoint_with_a_misspelled_config_key", message="config stored in")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(widht=8))
    return sample(damaged_checkpoint(box, shared, edit))


@case(KIND, "evaluating_a_code_carrying_checkpoint", message="tried to run code",
      check=marker_absent)
def _(box, shared):
    def edit(checkpoint):
        checkpoint["ganrun"]["config"]["note"] = Payload(box.canary / "PWNED")
    return ["eval", f"ckpt={damaged_checkpoint(box, shared, edit)}", "metrics=modes"]


@case(KIND, "training_from_a_code_carrying_checkpoint", message="tried to run code",
      check=marker_absent)
def _(box, shared):
    def edit(checkpoint):
        checkpoint["ganrun"]["config"]["note"] = Payload(box.canary / "PWNED")
    path = damaged_checkpoint(box, shared, edit)
    return ["train", "hardware=cpu", f"ckpt_path={path}", "hydra.run.dir=../runs/r"]


@case(KIND, "exporting_a_code_carrying_checkpoint", message="tried to run code",
      check=marker_absent)
def _(box, shared):
    def edit(checkpoint):
        checkpoint["ganrun"]["config"]["note"] = Payload(box.canary / "PWNED")
    return ["export", f"ckpt={damaged_checkpoint(box, shared, edit)}", "out=../out/e"]


for target in ("subprocess.run", "builtins.exec"):
    case(KIND, f"checkpoint_naming_{target.replace('.', '_')}",
         message=[f"asks to build '{target}'", "standard library"], absent="trust_targets")(
        lambda box, shared, target=target: sample(damaged_checkpoint(box, shared, config_edit(
            lambda c: c["model"]["generator"].update(_target_=target)))))


@case(KIND, "checkpoint_naming_a_ganrun_function",
      message=["asks to build 'ganrun.inference.imagefiles.write_png'",
               "trust_targets cannot widen that"], absent="trust_targets=[ganrun")
def _(box, shared):
    edit = config_edit(lambda c: c["model"]["generator"].update(
        _target_="ganrun.inference.imagefiles.write_png"))
    return sample(damaged_checkpoint(box, shared, edit))


FOREIGN = [
    ("checkpoint_without_data_shape", lambda c: c["ganrun"].pop("data_shape"),
     "its `data_shape` is missing"),
    ("checkpoint_iteration_a_string", lambda c: c["ganrun"].update(iteration="3"),
     "its `iteration` is a str"),
    ("checkpoint_latent_dim_a_word",
     lambda c: c["ganrun"]["config"]["model"].update(latent_dim="eight"), "is not valid"),
]
for name, change, text in FOREIGN:
    case(KIND, name, message=text)(
        lambda box, shared, change=change: sample(damaged_checkpoint(box, shared, change)))


def run_folder_kept(box, result, shared):
    state = torch.load(box.root / "runs" / "r" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["ganrun"]["format"] == 7


@case(KIND, "resuming_a_newer_checkpoint", message="written by a newer ganrun",
      check=run_folder_kept)
def _(box, shared):
    checkpoints = box.root / "runs" / "r" / "checkpoints"
    checkpoints.mkdir(parents=True)
    damaged = damaged_checkpoint(box, shared, lambda c: c["ganrun"].update(format=7))
    shutil.move(damaged, checkpoints / "last.ckpt")
    return ["train", "hardware=cpu", "resume=true", f"hydra.run.dir={box.root / 'runs' / 'r'}"]


for name, content in (("resuming_an_empty_file", b""), ("resuming_garbage", b"garbage bytes")):
    case(KIND, name, message=["bad.ckpt", "cannot be read"])(
        lambda box, shared, content=content: (
            (box.src / "bad.ckpt").write_bytes(content),
            ["train", "hardware=cpu", f"ckpt_path={box.src / 'bad.ckpt'}",
             "hydra.run.dir=../runs/r"])[1])


# Exports: model.safetensors + config.json.

def damaged_export(box, shared, damage) -> Path:
    copy = box.src / "export"
    shutil.copytree(shared.gen_export, copy)
    damage(copy)
    return copy


def edit_json(change):
    def damage(folder: Path):
        config = json.loads((folder / "config.json").read_text())
        change(config)
        (folder / "config.json").write_text(json.dumps(config))
    return damage


def written_canary_absent(box, result, shared):
    assert not (box.canary / "written.txt").exists() and not (box.canary / "made").exists()


@case(KIND, "export_kwargs_writing_a_file", message="asks to build 'pathlib.Path.write_text'",
      check=written_canary_absent)
def _(box, shared):
    target = box.canary / "written.txt"
    payload = {"_target_": "pathlib.Path.write_text", "self": str(target), "data": "x"}
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["nets"]["G"].update(width=payload))))


@case(KIND, "export_kwargs_nested_open", message="asks to build 'builtins.open'",
      check=written_canary_absent)
def _(box, shared):
    payload = {"a": [{"_target_": "builtins.open", "file": str(box.canary / "written.txt"),
                      "mode": "w"}]}
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["nets"]["G"].update(nested=payload))))


@case(KIND, "export_kwargs_mkdir", message="asks to build 'pathlib.Path.mkdir'",
      check=written_canary_absent)
def _(box, shared):
    payload = {"_target_": "pathlib.Path.mkdir", "self": str(box.canary / "made")}
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["model"].update(latent_dim=payload))))


@case(KIND, "export_generator_built_partially", message="partially")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["nets"]["G"].update(_partial_=True))))


@case(KIND, "export_with_an_interpolation", message="holds an interpolation",
      absent=str(Path.home()))
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["nets"]["G"].update(norm="${oc.env:HOME}"))))


@case(KIND, "export_target_in_an_unread_field", message="asks to build 'os.remove'")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c.update(notes={"_target_": "os.remove", "path": str(box.canary / "a.txt")}))))


@case(KIND, "export_dataset_root_outside", code=2, message=["data_root"],
      check=lambda box, result, shared: not (box.canary / "FashionMNIST").exists()
      and not (box.canary / "MNIST").exists())
def _(box, shared):
    # The root walks out of the work folder into the canary tree: eval must neither create
    # folders there nor download into it.
    export = damaged_export(box, shared, edit_json(
        lambda c: c["dataset"].update(root="../canary", download=True)))
    return ["eval", f"ckpt={export}", "metrics=class_coverage", "num_samples=4"]


@case(KIND, "export_config_not_json", message="config.json is not valid JSON")
def _(box, shared):
    return sample(damaged_export(box, shared,
                                 lambda f: (f / "config.json").write_text("{not json")))


@case(KIND, "export_config_a_list", message="not a ganrun export config")
def _(box, shared):
    return sample(damaged_export(box, shared, lambda f: (f / "config.json").write_text("[1]")))


@case(KIND, "export_without_weights", message="is not a ganrun export")
def _(box, shared):
    return sample(damaged_export(box, shared, lambda f: (f / "model.safetensors").unlink()))


@case(KIND, "export_truncated_weights", message="truncated or not a safetensors file")
def _(box, shared):
    def damage(folder):
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:200])
    return sample(damaged_export(box, shared, damage))


@case(KIND, "export_newer_format", message="newer ganrun")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(lambda c: c.update(ganrun_export=9))))


@case(KIND, "export_weights_of_another_network",
      message="does not match the network that config.json describes")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["nets"]["G"].update(width=16))))


@case(KIND, "export_without_version", message="no `ganrun_export` version")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(lambda c: c.pop("ganrun_export"))))


@case(KIND, "export_naming_a_foreign_model_class", message="asks to build 'evil.Sampler'")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["model"].update(_target_="evil.Sampler"))))


@case(KIND, "export_model_class_not_an_inference", message="not a ganrun inference class")
def _(box, shared):
    return sample(damaged_export(box, shared, edit_json(
        lambda c: c["model"].update(_target_="ganrun.nets.dcgan.Generator"))))


def format_1(box, shared) -> Path:
    """The export written by ganrun before the task contract (format 1), from today's."""
    from safetensors.torch import load_file, save_file

    folder = box.src / "format1"
    folder.mkdir()
    config = json.loads((shared.gen_export / "config.json").read_text())
    generator = config["nets"]["G"]
    kwargs = {k: generator.pop(k) for k in ("latent_dim", "channels", "image_size",
                                            "num_classes")}
    old = {"ganrun_export": 1, "task": "generation", "generator": generator,
           "generator_kwargs": kwargs, "latent_dim": kwargs["latent_dim"],
           "data_shape": config["data_shape"], "dataset": config["dataset"]}
    (folder / "config.json").write_text(json.dumps(old))
    weights = load_file(str(shared.gen_export / "model.safetensors"))
    save_file({k.removeprefix("nets.G."): v for k, v in weights.items()},
              str(folder / "model.safetensors"))
    return folder


def format_1_samples_alike(box, result, shared):
    from ganrun import generate_images, load_generator

    old = generate_images(load_generator(box.src / "format1"), 4, seed=0)
    assert torch.equal(old, generate_images(load_generator(shared.gen_export), 4, seed=0))


@case(KIND, "export_of_format_1_still_loads", code=0, check=format_1_samples_alike)
def _(box, shared):
    return sample(format_1(box, shared))


@case(KIND, "export_of_format_1_with_a_nested_target", message="asks to build 'os.system'")
def _(box, shared):
    folder = format_1(box, shared)
    edit_json(lambda c: c["generator_kwargs"].update(
        width={"_target_": "os.system", "command": "touch x"}))(folder)
    return sample(folder)


@pytest.mark.parametrize("c", cases(KIND))
def test_bad_file(c, box, shared):
    run_case(c, box, shared)


def test_an_export_is_readable_by_others(shared):
    for name in ("model.safetensors", "config.json"):
        mode = (shared.gen_export / name).stat().st_mode & 0o777
        umask = os.umask(0)
        os.umask(umask)
        assert mode == 0o666 & ~umask, (name, oct(mode))
