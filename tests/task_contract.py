"""The tasks the contract suite runs (tests/test_task_contract*.py): every task ganrun ships
and the user's own task of examples/custom_task (CoGAN), each with tiny settings, the tags it
logs, how its output is made (sample or translate), a cheap evaluation, and an option it
refuses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "custom_task"
TESTS = Path(__file__).resolve().parent

COMMON = ["debug=tiny", "seed=3", "dataset.download=false"]


@dataclass
class Contract:
    name: str
    args: list[str]            # train arguments after the data root (added as dataset.root=)
    tags: set[str]             # scalars every iteration logs
    output: str                # "sample" or "translate"
    evaluate: list[str]        # a cheap `ganrun eval` of its checkpoint
    refused: tuple[str, str]   # (an option the task does not take, a phrase of its message)
    trust: list[str] = field(default_factory=list)  # a user's own task: trust_targets=
    needs_inception: bool = False
    user_code: bool = False    # PYTHONPATH and --config-dir of examples/custom_task
    data: str = ""             # the data's folder under the root the tests write

    def train_args(self, root: Path) -> list[str]:
        extra = ["--config-dir", str(EXAMPLE / "conf")] if self.user_code else []
        return [*COMMON, *self.args, f"dataset.root={root / self.data}", *extra]

    def env(self) -> dict:
        parts = [str(TESTS)] + ([str(EXAMPLE)] if self.user_code else []) + \
            [p for p in [os.environ.get("PYTHONPATH")] if p]
        return {"PYTHONPATH": os.pathsep.join(parts)}


GAN_TAGS = {"loss/d", "loss/g", "lr/g", "lr/d", "grad_norm/g", "grad_norm/d"}

CONTRACTS = {
    "generation": Contract(
        "generation",
        ["dataset=mnist"],
        GAN_TAGS | {"d/real", "d/fake", "d/acc_real", "d/acc_fake"}, "sample",
        ["metrics=class_coverage", "num_samples=20",
         "+metrics.evaluate.class_coverage.train_steps=5"],
        ("dataset=fashion_domains", "task=generation trains on one set of images")),
    "cyclegan": Contract(
        "cyclegan",
        ["experiment=cyclegan_fashion_mnist", "dataset.source=mnist", "dataset.batch_size=2",
         "task.pool_size=3"],
        GAN_TAGS | {"loss/d_a", "loss/d_b", "loss/cycle_a", "loss/cycle_b", "loss/g_ab",
                    "loss/g_ba"}, "translate",
        ["metrics=translation", "num_samples=4",
         "metrics.evaluate.translation.classifier_steps=5"],
        ("ema=decay", "task=cyclegan does not support `ema`"), needs_inception=True),
    "pix2pix": Contract(
        "pix2pix",
        ["task=pix2pix", "model=pix2pix", "degrade=mask", "dataset=mnist", "dataset.batch_size=4"],
        GAN_TAGS | {"loss/g_l1", "loss/g_adv", "d/real", "d/fake"}, "translate",
        ["metrics=paired", "num_samples=4", "metrics.evaluate.paired.fid_samples=0"],
        ("augment=diffaugment", "task=pix2pix does not support `augment`")),
    "stylegan2": Contract(
        "stylegan2",
        ["experiment=stylegan2_fashion_mnist", "dataset=mnist", "dataset.image_size=16",
         "dataset.batch_size=4"],
        GAN_TAGS | {"reg/pl_penalty", "reg/pl_mean", "reg/r1_penalty", "d/real", "d/fake"},
        "sample",
        ["metrics=class_coverage", "num_samples=20",
         "+metrics.evaluate.class_coverage.train_steps=5"],
        ("regularizer=r1", "task=stylegan2 regularizes with its own lazy R1")),
    "text2image": Contract(
        "text2image",
        ["task=text2image", "model=text2image", "dataset=caption_folder", "loss=hinge",
         "dataset.image_size=16", "dataset.batch_size=4", "task.ma_gp=2", "ema=decay"],
        GAN_TAGS | {"loss/g_interpolated", "d/wrong", "reg/ma_gp"}, "sample",
        ["metrics=text_match", "num_samples=6", "metrics.evaluate.text_match.fid=false",
         "metrics.evaluate.text_match.r_candidates=4"],
        ("augment=diffaugment", "task=text2image does not support `augment`"),
        data="captions"),
    "cogan (examples/custom_task)": Contract(
        "cogan",
        ["task=cogan", "model=cogan", "dataset=mnist"],  # sizes: its conf/debug/model/
        GAN_TAGS | {"loss/d_a", "loss/d_b"}, "sample",
        ["metrics=class_coverage", "num_samples=20",
         "+metrics.evaluate.class_coverage.train_steps=5"],
        ("conditioning=embedding", "task=cogan does not support `model.conditioning`"),
        trust=["trust_targets=[cogan]"], user_code=True),
}
