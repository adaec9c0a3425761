"""The run's seed: the one asked for, the one a resumed run started with, or one drawn from OS
entropy, recorded where a user looks for it (.hydra/config.yaml, checkpoint, HParams, log).

Lightning's ``seed_everything(None)`` returns 0 here, so an unseeded run would repeat the last
one exactly; ganrun draws the seed itself.
"""

import hashlib
import os
import secrets
from pathlib import Path

import yaml

from ganrun.files import write_text

# A child rank of Lightning's DDP launcher re-runs the command: it must use rank 0's seed.
ENV = "GANRUN_DRAWN_SEED"
SHARED_IDS = ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID")


def run_seed(asked: int | None, saved: int | None) -> tuple[int, str]:
    """The seed and where it came from: "given", "checkpoint" (``saved``, the seed of the
    run being resumed) or "drawn"."""
    if asked is not None:
        return asked, "given"
    if saved is not None:
        return saved, "checkpoint"  # continue with the same streams
    if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get(ENV):
        return int(os.environ[ENV]), "drawn"
    seed = _shared_draw()
    if seed is None:
        seed = secrets.randbits(31)  # int32-safe: numpy and every library accept it
    os.environ[ENV] = str(seed)
    return seed, "drawn"


def _shared_draw() -> int | None:
    """For ranks started apart (SLURM tasks, torchrun), which cannot share a draw before the
    process group exists but must shuffle the data alike: a seed from their job's id."""
    if int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1"))) < 2:
        return None
    job = next((os.environ[k] for k in SHARED_IDS if os.environ.get(k)), None)
    return None if job is None else int(hashlib.sha256(job.encode()).hexdigest(), 16) % 2**31


def record_seed(output_dir: str, seed: int) -> None:
    """Writes the seed into the run's saved ``.hydra/config.yaml`` (which says ``seed: null``
    for an unseeded run), so that the config file repeats the run."""
    path = Path(output_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        return  # hydra.output_subdir=null: no saved config
    config = yaml.safe_load(path.read_text()) or {}
    if config.get("seed") != seed:
        config["seed"] = seed
        write_text(path, yaml.safe_dump(config, sort_keys=False))
