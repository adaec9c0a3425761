"""Bad inputs, files from others beyond checkpoints and exports: run folders and studies
(their `.hydra/` records, trial files, journals), trusted packages (a package the user trusts
is trusted for its own code, never for what it imports), caption metadata, and reports and model
cards written into folders that may hold links. Each case runs the command as a user types it
and checks the exit code, the message, no traceback and the canary tree (tests/badinput.py)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from badinput import TINY_GEN, box, case, cases, run_case, shared  # noqa: F401 (fixtures)
from fakedata import write_caption_folder

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_task"
if str(EXAMPLE) not in sys.path:  # the user's own package (CoGAN) that cases trust
    sys.path.insert(0, str(EXAMPLE))

RUNS, TRUST, CAPTIONS, WRITES = "run folders and studies", "trusted packages", \
    "caption metadata", "cards and reports"


def marker_absent(box, result, shared):
    assert not (box.canary / "PWNED").exists()


def pickle_bomb(box) -> Path:
    """A pickle that would create canary/PWNED when unpickled with weights_only=False."""
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {box.canary / 'PWNED'}",)

    path = box.src / "payload.pt"
    path.write_bytes(pickle.dumps(Payload()))
    return path


def copied_run(box, shared, name="run") -> Path:
    run = box.src / name
    shutil.copytree(shared.gen_run, run)
    return run


def set_overrides(run: Path, overrides: list) -> None:
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))


def resume(run: Path) -> list[str]:
    return ["train", "resume=true", f"hydra.run.dir={run}", "trainer.max_steps=4"]


# ---- run folders and studies ----------------------------------------------------------------

@case(RUNS, "resume_with_a_recorded_target_that_loads_a_pickle",
      message=["asks to build 'torch.load'", "not imported or run"], check=marker_absent)
def _(box, shared):
    run = copied_run(box, shared)
    bomb = pickle_bomb(box)
    set_overrides(run, yaml.safe_load((shared.gen_run / ".hydra" / "overrides.yaml").read_text())
                  + ["+callbacks.extra._target_=torch.load", f"+callbacks.extra.f={bomb}",
                     "+callbacks.extra.weights_only=false"])
    return resume(run)


@case(RUNS, "resume_with_a_recorded_nested_target", message="asks to build 'os.system'")
def _(box, shared):
    run = copied_run(box, shared)
    set_overrides(run, ["dataset=mnist", "+loss.extra={_target_: os.system, command: 'touch x'}"])
    return resume(run)


@case(RUNS, "resume_with_a_recorded_interpolation", message="holds an interpolation",
      absent=str(Path.home()))
def _(box, shared):
    run = copied_run(box, shared)
    set_overrides(run, ["dataset=mnist", "dataset.root=${oc.env:HOME}"])
    return resume(run)


@case(RUNS, "resume_with_a_recorded_hydra_setting", message=["changes Hydra's own settings"])
def _(box, shared):
    run = copied_run(box, shared)
    set_overrides(run, ["dataset=mnist", "hydra.job.env_set.LD_PRELOAD=/tmp/evil.so"])
    return resume(run)


@case(RUNS, "resume_with_a_recorded_hydra_callback", message=["changes Hydra's own settings"])
def _(box, shared):
    run = copied_run(box, shared)
    set_overrides(run, ["+hydra.callbacks.x._target_=os.system"])
    return resume(run)


@case(RUNS, "resume_with_a_recorded_option_that_is_a_path",
      message="a config option is a name, not a path")
def _(box, shared):
    run = copied_run(box, shared)
    set_overrides(run, ["experiment=../../../src/evil"])
    return resume(run)


@case(RUNS, "resume_with_overrides_that_are_a_number", message="is not a list of overrides")
def _(box, shared):
    run = copied_run(box, shared)
    (run / ".hydra" / "overrides.yaml").write_text("42\n")
    return resume(run)


@case(RUNS, "resume_with_binary_overrides", message="cannot be read")
def _(box, shared):
    run = copied_run(box, shared)
    (run / ".hydra" / "overrides.yaml").write_bytes(bytes(range(256)))
    return resume(run)


@case(RUNS, "resume_with_a_config_dir_named_in_the_folder",
      message=["was trained with options from --config-dir", "name it again"])
def _(box, shared):
    run = copied_run(box, shared)
    shadow = run / "conf" / "logger"
    shadow.mkdir(parents=True)
    (shadow / "tensorboard.yaml").write_text("_target_: os.system\ncommand: touch PWNED\n")
    hydra_file = run / ".hydra" / "hydra.yaml"
    saved = yaml.safe_load(hydra_file.read_text())
    saved["hydra"]["runtime"]["config_sources"].append(
        {"path": str(run / "conf"), "schema": "file", "provider": "command-line"})
    hydra_file.write_text(yaml.safe_dump(saved))
    return resume(run)


@case(RUNS, "resume_a_folder_holding_a_link", message=["holds symbolic links", "train.log"])
def _(box, shared):
    run = copied_run(box, shared)
    (run / "train.log").unlink()
    (run / "train.log").symlink_to(box.canary / "a.txt")
    return resume(run)


@case(RUNS, "train_into_a_folder_holding_a_linked_config", message="holds symbolic links")
def _(box, shared):
    run = box.out / "shared_run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").symlink_to(box.canary / "deep" / "b.txt")
    return ["train", *TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}",
            f"hydra.run.dir={run}"]


def study_with_trial(box, shared, pruner=None, params=None) -> Path:
    """A study folder: a journal with one RUNNING trial (trial_0, a trained run's copy)."""
    import optuna

    from ganrun import study as studies

    folder = box.out / "study"  # the user's own output folder: tune may lock and write there
    folder.mkdir()
    study = optuna.create_study(study_name="fid_lr", storage=studies.storage(folder))
    study.set_user_attr("pruner", pruner)
    study.set_user_attr("metric", "metrics/fid")
    dist = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)}
    study.ask(params or dist)
    run = folder / "trial_0"
    shutil.copytree(shared.gen_run, run)
    set_overrides(run, yaml.safe_load((shared.gen_run / ".hydra" / "overrides.yaml").read_text())
                  + ["+callbacks.pruning._target_=ganrun.callbacks.pruning.OptunaPruning",
                     "+callbacks.pruning.run_dir=${paths.output_dir}"])
    studies.write_trial_file(run, folder, "fid_lr", 0, "metrics/fid")
    return folder


@case(RUNS, "trial_resumed_by_hand_with_a_nested_pruner_target",
      message=["The study's pruner", "asks to build 'torch.load'"], check=marker_absent)
def _(box, shared):
    bomb = pickle_bomb(box)
    folder = study_with_trial(box, shared, pruner={
        "_target_": "optuna.pruners.PatientPruner", "patience": 1,
        "wrapped_pruner": {"_target_": "torch.load", "f": str(bomb)}})
    return resume(folder / "trial_0")


@case(RUNS, "trial_file_naming_a_study_outside", message="holds no study.log")
def _(box, shared):
    run = copied_run(box, shared, "lonely_trial")
    set_overrides(run, yaml.safe_load((shared.gen_run / ".hydra" / "overrides.yaml").read_text())
                  + ["+callbacks.pruning._target_=ganrun.callbacks.pruning.OptunaPruning",
                     "+callbacks.pruning.run_dir=${paths.output_dir}"])
    (run / "trial.json").write_text(json.dumps({
        "study_dir": str(box.canary / "made_by_a_file"), "study": "x", "trial": 0,
        "metric": "metrics/fid"}))
    return resume(run)


@case(RUNS, "tune_continuing_a_study_with_a_foreign_parameter",
      message=["does not hold", "read as data"])
def _(box, shared):
    import optuna

    folder = study_with_trial(box, shared, params={
        "+callbacks.x._target_": optuna.distributions.CategoricalDistribution(["os.system"])})
    return ["tune", "hparams_search=fid_lr", f"hparams_search.study_dir={folder}",
            "trainer.max_steps=4", *TINY_GEN[:2], "dataset=mnist",
            f"dataset.root={shared.mnist}", "hardware=cpu"]


@case(RUNS, "tune_continuing_a_study_with_a_value_outside_the_search",
      message=["does not hold"])
def _(box, shared):
    import optuna

    folder = study_with_trial(box, shared, params={
        "optimizer.lr": optuna.distributions.CategoricalDistribution(["${oc.env:HOME}"])})
    return ["tune", "hparams_search=fid_lr", f"hparams_search.study_dir={folder}",
            "trainer.max_steps=4", "dataset=mnist", f"dataset.root={shared.mnist}",
            "hardware=cpu"]


# ---- trusted packages -----------------------------------------------------------------------

def cogan_export(box, shared, edit) -> Path:
    folder = box.src / "export"
    shutil.copytree(shared.gen_export, folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@case(TRUST, "trusted_package_reaching_torch_load_through_an_import",
      message=["You trust 'cogan'", "not a class or function that 'cogan' defines"],
      check=marker_absent)
def _(box, shared):
    bomb = pickle_bomb(box)
    folder = cogan_export(box, shared, lambda c: c["nets"]["G"].update(
        _target_="cogan.task.torch.load", _args_=[str(bomb)]))
    return ["sample", f"ckpt={folder}", "out=../out/x", "num=2", "trust_targets=[cogan]"]


@case(TRUST, "trusted_package_reaching_torch_save_through_the_environment",
      message="not a class or function that 'cogan' defines", env={"GANRUN_TRUST_TARGETS": "cogan"})
def _(box, shared):
    checkpoint = torch.load(shared.gen_ckpt, weights_only=True)
    checkpoint["ganrun"]["config"]["loss"] = {"_target_": "cogan.task.torch.save",
                                             "obj": "x", "f": str(box.canary / "a.txt")}
    path = box.src / "bad.ckpt"
    torch.save(checkpoint, path)
    return ["export", f"ckpt={path}", "out=../out/e"]


@case(TRUST, "narrowest_trusted_prefix_reaching_an_import",
      message="not a class or function that 'cogan.nets' defines",
      absent="trust_targets=[cogan.nets.torch]")
def _(box, shared):
    folder = cogan_export(box, shared, lambda c: c["nets"]["G"].update(
        _target_="cogan.nets.torch.save"))
    return ["sample", f"ckpt={folder}", "out=../out/x", "num=2", "trust_targets=[cogan.nets]"]


@case(TRUST, "unsafe_load_argument_on_an_allowed_target",
      message=["weights_only", "would let a load run code"])
def _(box, shared):
    folder = cogan_export(box, shared, lambda c: c["nets"]["G"].update(weights_only=False))
    return ["sample", f"ckpt={folder}", "out=../out/x", "num=2"]


@case(TRUST, "trusting_torch_does_not_allow_torch_load",
      message=["a library ganrun is built on", "cannot widen"])
def _(box, shared):
    folder = cogan_export(box, shared, lambda c: c["nets"]["G"].update(_target_="torch.load",
                                                                      f="x"))
    return ["sample", f"ckpt={folder}", "out=../out/x", "num=2", "trust_targets=[torch]"]


def cogan_builds(box, result, shared):
    assert result.code == 0
    assert len(list((box.out / "x").glob("*.png"))) == 2


@case(TRUST, "a_trusted_packages_own_class_still_loads", code=0, check=cogan_builds)
def _(box, shared):
    """The trust model must not refuse what it is for: a network the trusted package defines
    (a dcgan Generator subclass standing in for it, under cogan's name)."""
    from cogan import nets

    if not hasattr(nets, "TrustedGenerator"):
        from ganrun.nets.dcgan import Generator

        class TrustedGenerator(Generator):
            pass
        TrustedGenerator.__module__, TrustedGenerator.__qualname__ = "cogan.nets", \
            "TrustedGenerator"
        nets.TrustedGenerator = TrustedGenerator
    folder = cogan_export(box, shared, lambda c: c["nets"]["G"].update(
        _target_="cogan.nets.TrustedGenerator"))
    return ["sample", f"ckpt={folder}", "out=../out/x", "num=2", "trust_targets=[cogan]"]


# ---- caption metadata -----------------------------------------------------------------------

def caption_run(box, metadata_edit) -> list[str]:
    root = box.src / "captions"
    write_caption_folder(root)
    metadata_edit(root)
    return ["train", "task=text2image", "model=text2image", "dataset=caption_folder",
            f"dataset.root={root}", "dataset.image_size=16", "dataset.batch_size=4",
            "trainer.max_steps=1", "hardware=cpu", "hydra.run.dir=../out/r"]


def rewrite_first_row(root: Path, name: str) -> None:
    metadata = root / "metadata.jsonl"
    lines = metadata.read_text().splitlines()
    row = json.loads(lines[0])
    row["file_name"] = name
    metadata.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")


@case(CAPTIONS, "file_name_climbing_out", message="lies outside the caption folder")
def _(box, shared):
    return caption_run(box, lambda root: rewrite_first_row(root, "../../canary/a.png"))


@case(CAPTIONS, "absolute_file_name", message="lies outside the caption folder")
def _(box, shared):
    return caption_run(box, lambda root: rewrite_first_row(root, str(box.canary / "x.png")))


@case(CAPTIONS, "link_out_of_the_folder", message="lies outside the caption folder")
def _(box, shared):
    def edit(root):
        outside = box.canary / "deep" / "img.png"
        first = json.loads((root / "metadata.jsonl").read_text().splitlines()[0])
        shutil.copy(root / first["file_name"], outside)
        (root / first["file_name"]).unlink()
        (root / first["file_name"]).symlink_to(outside)
    return caption_run(box, edit)


# ---- cards and reports ----------------------------------------------------------------------

def sweep_of(box, shared, overrides=None) -> Path:
    sweep = box.out / "sweep"
    for job in ("0", "1"):
        shutil.copytree(shared.gen_run, sweep / job)
    if overrides is not None:
        set_overrides(sweep / "1", overrides)
    return sweep


def canary_intact(box, result, shared):
    assert (box.canary / "a.txt").read_text() == "a"


@case(WRITES, "report_through_a_planted_link", message=["is a symbolic link", "report"],
      check=canary_intact)
def _(box, shared):
    sweep = sweep_of(box, shared)
    (sweep / "report.md").symlink_to(box.canary / "a.txt")
    return ["report", str(sweep)]


def report_quotes_safely(box, result, shared):
    sweep = box.out / "sweep"
    md = (sweep / "report.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1 and "evil" in rows[0] and "\n" not in rows[0]
    assert rows[0].count(" | ") == md.splitlines()[2].count(" | ")  # no extra column
    page = (sweep / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    import csv

    with (sweep / "report.csv").open() as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert not any(c.startswith("=") for c in cells)
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    assert "%23" in page  # the job name's '#' quoted in the picture's address


@case(WRITES, "report_quoting_newlines_pipes_scripts_and_formulas", code=0,
      check=report_quotes_safely)
def _(box, shared):
    sweep = sweep_of(box, shared, ["loss.evil=a\nb | c <script>alert(1)</script> $x$ #?"])
    formula = sweep / '=HYPERLINK("x") #?'
    shutil.copytree(shared.gen_run, formula)
    (formula / "samples").mkdir(exist_ok=True)
    (formula / "samples" / "step_3.png").write_bytes(b"")
    return ["report", str(sweep)]


@case(WRITES, "report_of_a_job_with_a_list_status", message="is not a status record")
def _(box, shared):
    sweep = sweep_of(box, shared)
    (sweep / "1" / "status.json").write_text("[1, 2]")
    return ["report", str(sweep)]


@case(WRITES, "export_overwriting_a_linked_card", message="is a symbolic link",
      check=canary_intact)
def _(box, shared):
    out = box.out / "e"
    out.mkdir()
    (out / "README.md").symlink_to(box.canary / "a.txt")
    return ["export", f"ckpt={shared.gen_ckpt}", f"out={out}", "overwrite=true"]


def card_is_fenced(box, result, shared):
    card = (box.out / "e" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    metrics = {m["type"]: m["value"] for m in header["model-index"][0]["results"][0]["metrics"]}
    assert set(metrics) == {"fid"}  # NaN, inf and odd names left out
    training = card.split("## Training")[1].split("## Metrics")[0]
    fence = training.strip().splitlines()[0]
    assert set(fence) == {"`"} and len(fence) > 3  # longer than the ``` inside
    assert training.strip().splitlines()[-1] == fence and len(training.strip().splitlines()) == 3
    assert "](http" not in card.split("## Samples")[0].replace(training, "")


@case(WRITES, "card_of_a_run_with_a_fence_in_an_override", code=0, check=card_is_fenced)
def _(box, shared):
    run = box.out / "run"
    shutil.copytree(shared.gen_run, run)
    set_overrides(run, ["dataset.root=/d\n```\n[click](http://evil.example)\n```"])
    ckpt = run / "checkpoints" / "last.ckpt"
    from ganrun.metrics.record import record_metrics

    record_metrics(ckpt, {"fid": 12.5, "kid": float("nan"), "is": float("inf"),
                          "x](http://evil)": 1.0})
    return ["export", f"ckpt={ckpt}", f"out={box.out / 'e'}"]


for kind in (RUNS, TRUST, CAPTIONS, WRITES):
    @pytest.mark.parametrize("c", cases(kind))
    def test_case(c, box, shared):
        run_case(c, box, shared)
    globals()[f"test_{kind.replace(' ', '_')}"] = test_case
del test_case
