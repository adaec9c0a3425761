"""The task contract's parts that need processes of their own, for every task (see
tests/task_contract.py): a run killed with SIGKILL and resumed ends exactly like an
uninterrupted one, and two DDP processes keep identical weights."""

from pathlib import Path

import pytest
import torch

from conftest import kill_then_resume, run_ganrun, scalars
from fakedata import write_caption_folder, write_mnist
from task_contract import CONTRACTS

TASKS = list(CONTRACTS)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract_data")
    write_mnist(root, n_train=64, n_test=16)
    write_caption_folder(root / "captions")
    return root


def state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("task", TASKS)
def test_sigkill_then_resume_is_exact(task, root, tmp_path):
    contract = CONTRACTS[task]
    common = [*contract.train_args(root), "callbacks.checkpoint.last_every_n_iterations=1"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_ganrun("train", *common, "trainer.max_steps=6", f"hydra.run.dir={whole}", cwd=tmp_path,
               env=contract.env())
    kill_then_resume(split, common, 6, tmp_path, env=contract.env())
    for tag in contract.tags - {"lr/g", "lr/d"}:
        assert scalars(whole)[tag] == scalars(split)[tag], tag
    a, b = state(whole), state(split)
    assert a["ganrun"]["counters"] == b["ganrun"]["counters"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:  # networks, EMA copies, image pools, running means
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key


@pytest.mark.parametrize("task", TASKS)
def test_ddp_two_processes_keep_identical_weights(task, root, tmp_path):
    contract = CONTRACTS[task]
    run = tmp_path / "run"
    proc = run_ganrun("train", *contract.train_args(root), "hardware=ddp",
                      "hardware.accelerator=cpu", "hardware.devices=2", "trainer.max_steps=2",
                      f"hydra.run.dir={run}", "+callbacks.rankdump._target_=rankdump.RankDump",
                      f"+callbacks.rankdump.dirpath={tmp_path}", cwd=tmp_path, env=contract.env())
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout
    assert state(run)["ganrun"]["iteration"] == 2
    # Gradients are averaged across ranks, so both end with the same weights.
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys() and len(rank0) > 4
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
