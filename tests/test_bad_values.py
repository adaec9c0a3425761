"""Bad inputs, values and faults on the newer surfaces: search spaces and study journals,
report folders, text-to-image exports, key=value values that look like YAML, numbers beyond
what a machine or a model can take, caption metadata encodings, divergence settings. Each is
one paragraph and exit 2 (or, for a fault ganrun repairs, exit 0 with nothing lost), no
traceback, the canary tree untouched (tests/badinput.py)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from badinput import TINY_GEN, box, case, cases, run_case, shared  # noqa: F401 (fixtures)
from fakedata import write_caption_folder
from test_text2image import TINY as TEXT_TINY

SEARCH, JOURNALS, REPORTS, TEXT_EXPORTS, KEYVALUES, NUMBERS, CAPTIONS, DIVERGENCE = (
    "search spaces", "study journals", "report folders", "text-to-image exports",
    "key=value syntax", "machine-sized numbers", "caption encodings", "divergence settings")


def train(shared, *extra):
    return ["train", *TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}",
            "hydra.run.dir=../out/r", *extra]


def tune(shared, box, *params):
    """A study with its own search (a YAML in the sandbox's config folder)."""
    folder = box.src / "conf" / "hparams_search"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "s.yaml").write_text(yaml.safe_dump({
        "metric": "loss/g", "direction": "minimize", "n_trials": 1, "evaluations": 1,
        "overrides": [], "study_dir": str(box.out / "study"), "sampler": None,
        "pruner": None, "params": {k: v for k, v in params}}).replace("'.nan'", ".nan")
        .replace("'.inf'", ".inf"))
    return ["tune", "hparams_search=s", "--config-dir", str(box.src / "conf"),
            *TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}"]


# ---- search spaces ----------------------------------------------------------------------------

SPACES = [
    ("nan_bound", ("optimizer.lr", {"float": [".nan", 1e-3]}), "two finite numbers"),
    ("inf_bound", ("optimizer.lr", {"float": [1e-5, ".inf"]}), "two finite numbers"),
    ("int_bounds_not_integers", ("trainer.n_critic", {"int": [1.5, 5.5]}), "two finite integers"),
    ("bounds_reversed", ("optimizer.lr", {"float": [1e-3, 1e-5]}), "low < high"),
    ("bounds_not_a_list", ("optimizer.lr", {"float": 1e-3}), "must be a list"),
    ("zero_step", ("trainer.n_critic", {"int": [1, 5], "step": 0}), "step must be a positive"),
    ("later_choice_invalid", ("loss", {"choice": ["bce", "hinge", "nosuchloss"]}),
     "hparams_search.params.loss = 'nosuchloss'"),
    ("later_choice_out_of_range", ("trainer.n_critic", {"choice": [1, 2, -3]}),
     "trainer.n_critic must be at least 1"),
    ("upper_bound_invalid", ("optimizer.lr", {"float": [1e-4, 1e3]}), None),
    ("empty_choice", ("loss", {"choice": []}), "is empty"),
    ("unknown_kind", ("optimizer.lr", {"range": [1, 2]}), "must be one of"),
]

for name, param, text in SPACES:
    if text is None:
        continue
    case(SEARCH, name, message=text)(lambda box, shared, param=param: tune(shared, box, param))


@case(SEARCH, "study_folder_cannot_be_written", message=["cannot be written", "study_dir"])
def _(box, shared):
    args = tune(shared, box, ("optimizer.lr", {"float": [1e-5, 1e-3], "log": True}))
    (box.out / "study").write_text("a file where the folder goes: unwritable, even for root")
    return args


# ---- study journals ---------------------------------------------------------------------------

def journal(box, lines: list[bytes]) -> Path:
    folder = box.out / "study"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.log").write_bytes(b"".join(lines))
    return folder


def real_journal(box, trials: int = 2) -> list[bytes]:
    """The lines of a real Optuna journal with ``trials`` finished trials."""
    import optuna

    from ganrun import study as studies

    folder = box.root / "made"
    study = optuna.create_study(study_name="s", storage=studies.storage(folder))
    for value in range(trials):
        trial = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-3)})
        study.tell(trial, float(value))
    return (folder / "study.log").read_bytes().splitlines(keepends=True)


def report_keeps_both_trials(box, result, shared):
    assert "2 finished" in result.text


@case(JOURNALS, "report_of_a_torn_journal", code=0, check=report_keeps_both_trials)
def _(box, shared):
    lines = real_journal(box)
    folder = journal(box, [*lines, b'{"op_code": 4, "wor'])
    shutil.copytree(shared.gen_run, folder / "trial_0")
    return ["report", str(folder)]


def torn_cut_and_kept(box, result, shared):
    folder = box.out / "study"
    assert (folder / "study.log.torn").read_bytes() == b'{"op_code": 4, "wor'
    assert (folder / "study.log").read_bytes().endswith(b"\n")
    from ganrun import study as studies

    assert len(studies.load(folder, write=False).trials) == 3  # 2 kept, 1 new


@case(JOURNALS, "tune_continuing_a_torn_journal", code=0, check=torn_cut_and_kept)
def _(box, shared):
    lines = real_journal(box)
    journal(box, [*lines, b'{"op_code": 4, "wor'])
    args = tune(shared, box, ("optimizer.lr", {"float": [1e-5, 1e-3]}))
    (box.src / "conf" / "hparams_search" / "s.yaml").write_text(
        (box.src / "conf" / "hparams_search" / "s.yaml").read_text().replace(
            "n_trials: 1", "n_trials: 3"))
    return [*args, "trainer.max_steps=2"]


@case(JOURNALS, "journal_damaged_in_the_middle",
      message=["damaged at line 2", "were not touched"])
def _(box, shared):
    lines = real_journal(box)
    journal(box, [lines[0], b"garbage\n", *lines[1:]])
    return tune(shared, box, ("optimizer.lr", {"float": [1e-5, 1e-3]}))


@case(JOURNALS, "report_of_a_garbage_journal", message="holds 0 studies")
def _(box, shared):
    folder = journal(box, [b"\x00\x01garbage\n", b"more garbage\n"])
    shutil.copytree(shared.gen_run, folder / "trial_0")
    return ["report", str(folder)]


@case(JOURNALS, "journal_emptied_beside_its_trials", message=["is empty or missing",
                                                               "trial_0"])
def _(box, shared):
    folder = journal(box, [])
    shutil.copytree(shared.gen_run, folder / "trial_0")
    return tune(shared, box, ("optimizer.lr", {"float": [1e-5, 1e-3]}))


@case(JOURNALS, "journal_of_json_that_is_not_optuna", message="not an Optuna journal ganrun")
def _(box, shared):
    folder = journal(box, [b'{"op_code": "x"}\n'])
    shutil.copytree(shared.gen_run, folder / "trial_0")
    return ["report", str(folder)]


# ---- report folders -------------------------------------------------------------------------

def sweep(box, shared) -> Path:
    folder = box.out / "sweep"
    for job in ("0", "1"):
        shutil.copytree(shared.gen_run, folder / job)
    return folder


def overrides_are(text: bytes):
    def prepare(box, shared):
        folder = sweep(box, shared)
        (folder / "1" / ".hydra" / "overrides.yaml").write_bytes(text)
        return ["report", str(folder)]
    return prepare


case(REPORTS, "overrides_a_number", message="is not a list of overrides")(overrides_are(b"7\n"))
case(REPORTS, "overrides_a_mapping", message="is not a list of overrides")(
    overrides_are(b"a: 1\n"))
case(REPORTS, "overrides_a_list_of_lists", message="is not a list of overrides")(
    overrides_are(b"- [1, 2]\n"))
case(REPORTS, "overrides_binary", message="cannot be read")(overrides_are(bytes(range(256))))
case(REPORTS, "overrides_deeply_nested", message="cannot be read")(
    overrides_are(b"[" * 5000 + b"]" * 5000))


@case(REPORTS, "status_a_list", message="is not a status record")
def _(box, shared):
    folder = sweep(box, shared)
    (folder / "1" / "status.json").write_text("[1, 2, 3]")
    return ["report", str(folder)]


@case(REPORTS, "status_garbage", message="cannot be read")
def _(box, shared):
    folder = sweep(box, shared)
    (folder / "1" / "status.json").write_bytes(b"\xff\xfe{")
    return ["report", str(folder)]


def nothing_half_written(box, result, shared):
    assert not any((box.out / "sweep").glob("report.*"))


@case(REPORTS, "damaged_job_leaves_no_half_report", message="is not a list of overrides",
      check=nothing_half_written)
def _(box, shared):
    folder = sweep(box, shared)
    (folder / "1" / ".hydra" / "overrides.yaml").write_text("7\n")
    return ["report", str(folder)]


def plotted(box, result, shared):
    assert (box.out / "sweep" / "report.png").stat().st_size > 1000


@case(REPORTS, "math_text_and_table_characters_in_job_names", code=0, check=plotted)
def _(box, shared):
    folder = sweep(box, shared)
    (folder / "1").rename(folder / "$\\frac{a}{$ | #x?y")
    (folder / "0" / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump(["loss=$\\alpha$", "dataset.root=$x"]))
    return ["report", str(folder)]


# ---- text-to-image exports --------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_export(shared):
    root = shared.root / "t2i"
    if not (root / "export").is_dir():
        from badinput import run_cli

        write_caption_folder(root / "captions", split_folders=True)
        result = run_cli("train", *TEXT_TINY, f"dataset.root={root / 'captions'}",
                         f"hydra.run.dir={root / 'run'}", cwd=root)
        assert result.code == 0, result.stderr[-2000:]
        result = run_cli("export", f"ckpt={root / 'run' / 'checkpoints' / 'last.ckpt'}",
                         f"out={root / 'export'}", cwd=root)
        assert result.code == 0, result.stderr[-2000:]
    return root / "export"


TEXT_EDITS = [
    ("vocabulary_longer_than_the_embedding",
     lambda c: c["data_shape"]["vocabulary"].extend(f"w{i}" for i in range(500)),
     "vocabulary"),
    ("vocabulary_with_numbers", lambda c: c["data_shape"]["vocabulary"].append(7), "vocabulary"),
    ("vocabulary_a_number", lambda c: c["data_shape"].update(vocabulary=5), "vocabulary"),
    ("vocabulary_a_string", lambda c: c["data_shape"].update(vocabulary="abc"), "vocabulary"),
    ("max_length_negative", lambda c: c["data_shape"].update(max_length=-3), "max_length"),
    ("max_length_huge", lambda c: c["data_shape"].update(max_length=10**12), "max_length"),
    ("max_length_a_string", lambda c: c["data_shape"].update(max_length="long"), "max_length"),
    ("max_length_missing", lambda c: c["data_shape"].pop("max_length"), "max_length"),
    ("latent_dim_wrong", lambda c: c["model"].update(latent_dim=c["model"]["latent_dim"] + 5),
     "does not match"),
    ("captions_a_string", lambda c: c["model"].update(captions="a dark square"), "captions"),
    ("image_size_a_list", lambda c: c["data_shape"].update(image_size=[16]), "image_size"),
]


def edited_text_export(box, text_export, edit) -> Path:
    folder = box.src / "t2i"
    shutil.copytree(text_export, folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def text_sample(folder: Path) -> list[str]:
    return ["sample", f"ckpt={folder}", "out=../out/x", "num=2", "text=a dark square"]


@pytest.mark.parametrize("name,edit,text", TEXT_EDITS, ids=[t[0] for t in TEXT_EDITS])
def test_text_to_image_export_edited(name, edit, text, box, shared, text_export):
    from badinput import Case

    c = Case(TEXT_EXPORTS, name, lambda box, shared: text_sample(
        edited_text_export(box, text_export, edit)), message=(text,))
    run_case(c, box, shared)


def test_text_to_image_export_nested_too_deep(box, shared, text_export):
    from badinput import Case

    def prepare(box, shared):
        folder = edited_text_export(box, text_export, lambda c: None)
        text = (folder / "config.json").read_text()
        (folder / "config.json").write_text(text[:-1] + ', "deep": ' + "[" * 100000
                                            + "]" * 100000 + "}")
        return text_sample(folder)
    run_case(Case(TEXT_EXPORTS, "nested", prepare, message=("is not valid JSON",)), box, shared)


@pytest.mark.parametrize("dtype,value,text", [(torch.int64, 1, "not floating point"),
                                              (torch.float32, float("nan"), "not finite")],
                         ids=["int64_weights", "nan_weights"])
def test_text_to_image_export_weights(dtype, value, text, box, shared, text_export):
    from safetensors.torch import load_file, save_file

    from badinput import Case

    def prepare(box, shared):
        folder = edited_text_export(box, text_export, lambda c: None)
        weights = load_file(folder / "model.safetensors")
        first = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() > 1)
        weights[first] = torch.full_like(weights[first], value, dtype=dtype)
        save_file(weights, str(folder / "model.safetensors"))
        return text_sample(folder)
    run_case(Case(TEXT_EXPORTS, "weights", prepare, message=(text,)), box, shared)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00", b""], ids=["png", "empty"])
def test_sample_texts_that_are_not_text(content, box, shared, text_export):
    from badinput import Case

    def prepare(box, shared):
        (box.src / "captions.png").write_bytes(content)
        return ["sample", f"ckpt={text_export}", "out=../out/x",
                f"texts={box.src / 'captions.png'}"]
    message = "is not a UTF-8 text file" if content else "holds no caption"
    run_case(Case(TEXT_EXPORTS, "texts", prepare, message=(message,)), box, shared)


# ---- key=value values that look like YAML -------------------------------------------------------

def sample_out(value):
    return lambda box, shared: ["sample", f"ckpt={shared.gen_export}", f"out=../out/{value}",
                                "num=2", "seed=1"]


def wrote_under(name):
    def check(box, result, shared):
        assert len(list((box.out / name).glob("*.png"))) == 2, result.text
    return check


for name, value in [("bang", "!x"), ("star", "*x"), ("bracket", "[x"), ("percent", "%x"),
                    ("backtick", "`x"), ("ampersand", "&x"), ("brace", "{x"),
                    ("colon", ": x"), ("hash", "#x"), ("quote", "'x")]:
    case(KEYVALUES, f"out_starting_with_{name}", code=0, check=wrote_under(value))(
        sample_out(value))


@pytest.mark.parametrize("text", [": a dark square", "{a dark", "!tag square", "[a, b"],
                         ids=["colon", "brace", "bang", "bracket"])
def test_caption_that_looks_like_yaml(text, box, shared, text_export):
    from badinput import Case

    def check(box, result, shared):
        assert len(list((box.out / "x").glob("*.png"))) == 2, result.text
    c = Case(KEYVALUES, "text", lambda box, shared: [
        "sample", f"ckpt={text_export}", "out=../out/x", "num=2", f"text={text}"],
        code=0, check=check)
    run_case(c, box, shared)


for name, arg, text in [("num_open_list", "num=[3", "invalid value for `num`"),
                        ("seed_alias", "seed=*x", "invalid value for `seed`"),
                        ("seed_power", "seed=2**64", "invalid value for `seed`"),
                        ("seed_float", "seed=1e30", "invalid value for `seed`"),
                        ("seed_beyond", "seed=18446744073709551616", "seed must be"),
                        ("steps_huge", "steps=10000000", "steps must be"),
                        ("batch_huge", "batch_size=100000000", "batch_size must be"),
                        ("num_beyond_memory", "num=1000000000000 format=npz", "memory")]:
    case(KEYVALUES if "seed" in name or "num_open" in name else NUMBERS, name, message=text)(
        lambda box, shared, arg=arg: ["sample", f"ckpt={shared.gen_export}", "out=../out/x",
                                      *arg.split()])


# ---- numbers beyond the machine or the model ------------------------------------------------

TRAIN_NUMBERS = [
    ("image_size_beyond_memory", "dataset.image_size=4096", "memory"),
    ("latent_dim_beyond_memory", "model.latent_dim=1000000000", "memory"),
    ("betas_above_one", "optimizer.generator.betas=[2,0.999]", "beta"),
    ("betas_nan", "optimizer.discriminator.betas=[nan,0.999]", "beta"),
    ("workers_absurd", "dataset.num_workers=1000000", "dataset.num_workers"),
    ("r1_gamma_negative", "regularizer=r1 regularizers.r1.gamma=-10", "gamma"),
    ("r1_interval_zero", "regularizer=r1 regularizers.r1.interval=0", "interval"),
    ("gp_weight_negative", "regularizer=gradient_penalty regularizers.gradient_penalty.weight=-1",
     "weight"),
    ("clip_value_zero", "loss=wasserstein regularizers.weight_clip.clip_value=0", "clip_value"),
    ("every_n_huge", "metrics=fid metrics.every_n_iterations=1e400", "every_n_iterations"),
    ("num_samples_a_word", "metrics=fid metrics.num_samples=many", "num_samples"),
    ("lr_factor_negative", "divergence=rollback divergence.lr_factor=-1", "lr_factor"),
    ("lr_factor_zero", "divergence=rollback divergence.lr_factor=0", "lr_factor"),
    ("lr_factor_nan", "divergence=rollback divergence.lr_factor=nan", "lr_factor"),
    ("max_weight_zero", "divergence=skip divergence.max_weight=0", "max_weight"),
]

for name, override, text in TRAIN_NUMBERS:
    kind = DIVERGENCE if "divergence" in override else NUMBERS
    case(kind, name, message=text)(
        lambda box, shared, override=override: train(shared, *override.split()))


def truncation_zero_is_the_centre(box, result, shared):
    from PIL import Image
    import numpy as np

    images = [np.asarray(Image.open(p)) for p in sorted((box.out / "x").glob("*.png"))]
    assert len(images) == 2 and np.array_equal(images[0], images[1])  # every latent the mean


@case(NUMBERS, "sample_truncation_zero_is_the_mean_latent", code=0,
      check=truncation_zero_is_the_centre)
def _(box, shared):
    return ["sample", f"ckpt={shared.gen_export}", "out=../out/x", "num=2", "truncation=0",
            "label=1"]


# ---- caption encodings -----------------------------------------------------------------------

def caption_folder(box, write) -> list[str]:
    root = box.src / "captions"
    write_caption_folder(root)
    write(root)
    return ["train", "task=text2image", "model=text2image", "dataset=caption_folder",
            f"dataset.root={root}", "dataset.image_size=16", "dataset.batch_size=4",
            "trainer.max_steps=1", "task.encoder_batches=1", "model.generator.width=4",
            "model.discriminator.width=4", "hardware=cpu", "hydra.run.dir=../out/r"]


def as_csv(root: Path, encoding: str, bom: bool = False, caption=None) -> None:
    rows = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines()]
    (root / "metadata.jsonl").unlink()
    lines = ["file_name,text"] + [f'{r["file_name"]},"{caption or (r["text"] if isinstance(r["text"], str) else r["text"][0])}"'
                                  for r in rows]
    data = ("\n".join(lines) + "\n").encode(encoding)
    (root / "metadata.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


case(CAPTIONS, "latin1_metadata", message=["is not UTF-8 text", "Save it as UTF-8"])(
    lambda box, shared: caption_folder(box, lambda root: as_csv(root, "latin-1",
                                                                caption="a café square")))
case(CAPTIONS, "field_over_the_csv_limit", message="cannot be read as CSV")(
    lambda box, shared: caption_folder(box, lambda root: as_csv(root, "utf-8",
                                                                caption="x" * 200_000)))


def trained_ok(box, result, shared):
    assert result.code == 0, result.text


case(CAPTIONS, "excel_bom_csv", code=0, check=trained_ok)(
    lambda box, shared: caption_folder(box, lambda root: as_csv(root, "utf-8", bom=True)))
case(CAPTIONS, "japanese_captions", code=0, check=trained_ok)(
    lambda box, shared: caption_folder(box, lambda root: as_csv(root, "utf-8",
                                                                caption="黒いブーツ")))


for kind in (SEARCH, JOURNALS, REPORTS, KEYVALUES, NUMBERS, CAPTIONS, DIVERGENCE):
    @pytest.mark.parametrize("c", cases(kind))
    def test_case(c, box, shared):
        run_case(c, box, shared)
    globals()[f"test_{kind.replace(' ', '_').replace('=', '_').replace('-', '_')}"] = test_case
del test_case
