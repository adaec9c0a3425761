"""The task contract, for every task ganrun ships and for a user's own (examples/custom_task:
CoGAN, through --config-dir and trust_targets, with no edit to ganrun): what it logs, bf16,
evaluation, sampling or translation, the export round trip and the options it refuses. The
commands run in this process (tests/badinput.py); kills and DDP, which need processes of their
own, are in test_task_contract_processes.py."""

import json
import math
from pathlib import Path

import pytest
import torch

from badinput import run_cli
from conftest import scalars
from fakedata import write_caption_folder, write_mnist, write_png
from task_contract import CONTRACTS, EXAMPLE

TASKS = list(CONTRACTS)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract_data")
    write_mnist(root, n_train=64, n_test=16)
    write_caption_folder(root / "captions")
    return root


@pytest.fixture
def user_code(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))


def train(contract, root, run, *extra, cwd):
    return run_cli("train", *contract.train_args(root), f"hydra.run.dir={run}", *extra, cwd=cwd)


@pytest.fixture(scope="module")
def trained(root, tmp_path_factory):
    """Each task trained 3 iterations once, on first use."""
    runs = {}

    def get(task: str) -> Path:
        if task not in runs:
            contract = CONTRACTS[task]
            run = tmp_path_factory.mktemp(contract.name) / "run"
            result = train(contract, root, run, "trainer.max_steps=3", cwd=run.parent)
            assert result.code == 0, result.stderr[-3000:]
            runs[task] = run
        return runs[task]
    return get


@pytest.mark.parametrize("task", TASKS)
def test_logs_the_tags_of_every_iteration(task, trained, user_code):
    logged = scalars(trained(task))
    assert CONTRACTS[task].tags <= set(logged), CONTRACTS[task].tags - set(logged)
    assert [step for step, _ in logged["loss/g"]] == [1, 2, 3]


@pytest.mark.parametrize("task", TASKS)
def test_trains_in_bf16(task, root, tmp_path, user_code):
    contract = CONTRACTS[task]
    result = train(contract, root, tmp_path / "run", "hardware=[cpu,bf16]", "trainer.max_steps=2",
                   cwd=tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    logged = scalars(tmp_path / "run")
    assert all(math.isfinite(v) for tag in ("loss/d", "loss/g") for _, v in logged[tag])
    assert "bf16-mixed" in (tmp_path / "run" / ".hydra" / "config.yaml").read_text()


@pytest.mark.parametrize("task", TASKS)
def test_evaluates_with_its_metrics_from_a_checkpoint_or_an_export(task, trained, tmp_path,
                                                                    request, user_code):
    contract = CONTRACTS[task]
    env = {}
    if contract.needs_inception:
        env["TORCH_HOME"] = str(request.getfixturevalue("torch_home"))
    ckpt = trained(task) / "checkpoints" / "last.ckpt"
    export = run_cli("export", f"ckpt={ckpt}", f"out={tmp_path / 'export'}", *contract.trust,
                     cwd=tmp_path)
    assert export.code == 0, export.stderr[-3000:]
    measured = []
    for source, data_root in ((ckpt, []), (tmp_path / "export", [f"data_root={root_of(ckpt)}"])):
        result = run_cli("eval", f"ckpt={source}", *contract.evaluate, *contract.trust,
                         *data_root, cwd=tmp_path, env=env)
        assert result.code == 0, result.stderr[-3000:]
        measured.append(json.loads(result.stdout.strip().splitlines()[-1]))
    values, from_export = measured
    assert values and all(isinstance(v, (int, float)) for v in values.values())
    assert from_export == pytest.approx(values)  # an export measures as its checkpoint
    assert (ckpt.with_suffix(".metrics.json")).is_file()
    assert (tmp_path / "export" / "metrics.json").is_file()


def root_of(ckpt: Path) -> str:
    return torch.load(ckpt, weights_only=True)["ganrun"]["config"]["dataset"]["root"]


@pytest.mark.parametrize("task", TASKS)
def test_output_and_export_round_trip(task, trained, tmp_path, user_code):
    """The checkpoint and its export make the same files, bit for bit."""
    contract = CONTRACTS[task]
    ckpt = trained(task) / "checkpoints" / "last.ckpt"
    export = run_cli("export", f"ckpt={ckpt}", f"out={tmp_path / 'export'}", *contract.trust,
                     cwd=tmp_path)
    assert export.code == 0, export.stderr[-3000:]
    if contract.output == "translate":
        write_png(tmp_path / "in" / "a.png", (30, 22), (90, 90, 90))
        command = ["translate", "in=in"]
    else:
        command = ["sample", "num=5", "format=npz", "seed=2"]
    for source, out in ((ckpt, "from_ckpt"), (tmp_path / "export", "from_export")):
        result = run_cli(*command, f"ckpt={source}", f"out={out}", *contract.trust, cwd=tmp_path)
        assert result.code == 0, result.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "from_ckpt").iterdir())
    assert files and files == sorted(p.name for p in (tmp_path / "from_export").iterdir())
    for name in files:
        assert (tmp_path / "from_ckpt" / name).read_bytes() == \
            (tmp_path / "from_export" / name).read_bytes(), name


@pytest.mark.parametrize("task", TASKS)
def test_refuses_an_option_it_does_not_take(task, root, tmp_path, user_code):
    contract = CONTRACTS[task]
    option, message = contract.refused
    result = train(contract, root, tmp_path / "run", option, cwd=tmp_path)
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was built


def test_the_user_task_needs_no_trust_to_train_but_its_files_do(trained, tmp_path, user_code):
    ckpt = trained("cogan (examples/custom_task)") / "checkpoints" / "last.ckpt"
    result = run_cli("sample", f"ckpt={ckpt}", "out=x", cwd=tmp_path)
    assert result.code == 2 and "trust_targets=[cogan" in result.stderr
    result = run_cli("sample", f"ckpt={ckpt}", "out=pairs", "num=2", "domain=pair",
                     "trust_targets=[cogan]", cwd=tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    from PIL import Image

    assert Image.open(tmp_path / "pairs" / "sample_000000.png").size == (56, 28)  # A | B
    state = torch.load(ckpt, weights_only=True)["ganrun"]
    assert state["config"]["task"]["_target_"] == "cogan.task.build"


def code_blocks(card: str) -> dict[str, str]:
    """The card's fenced blocks by the section they follow (## Training, ## Use)."""
    import re

    blocks = {}
    for section, body in re.findall(r"## (\w+)\n(.*?)(?=\n## |\Z)", card, re.S):
        found = re.search(r"^(`{3,})\n(.*?)\n\1$", body, re.S | re.M)
        if found:
            blocks[section] = found.group(2)
    return blocks


@pytest.mark.parametrize("task", TASKS)
def test_the_model_cards_commands_run_as_written(task, trained, tmp_path, user_code):
    """An export's card says how it was trained and how to use it: both commands run as
    written (a user's own task: with its --config-dir and trust_targets), and the card has a
    license and says how to get ganrun."""
    import shlex

    contract = CONTRACTS[task]
    ckpt = trained(task) / "checkpoints" / "last.ckpt"
    out = tmp_path / "export"
    assert run_cli("export", f"ckpt={ckpt}", f"out={out}", *contract.trust,
                   cwd=tmp_path).code == 0
    card = (out / "README.md").read_text()
    assert "license: other" in card and "Get ganrun" in card
    blocks = code_blocks(card)
    training = shlex.split(blocks["Training"])
    assert training[:2] == ["ganrun", "train"]
    assert ("--config-dir" in training) == contract.user_code
    result = run_cli(*training[1:], f"hydra.run.dir={tmp_path / 'again'}", cwd=tmp_path)
    assert result.code == 0, result.text[-2000:]
    write_png(tmp_path / "in" / "a.png", (30, 22), (90, 90, 90))
    command = blocks["Use"].splitlines()[0].replace("<this folder>", str(out)) \
        .replace("<images>", "in").replace("<folder>", "translated")
    used = shlex.split(command)
    assert ("trust_targets=[cogan]" in used) == contract.user_code
    assert run_cli(*used[1:], cwd=tmp_path).code == 0
