"""A run that never started leaves no folder behind: ``outputs/<date>/<time>/`` holding only
what Hydra and ganrun wrote at start-up (``.hydra/``, ``train.log``, ``status.json``) would
pile up with each mistake on the command line."""

import os
import shutil
from pathlib import Path

START_FILES = {".hydra", "train.log", "status.json"}
_created: dict[Path, Path] = {}  # run folder -> the topmost folder this run created for it


def make(folder: str | Path) -> None:
    """Creates the run folder, remembering which of its folders did not exist before."""
    folder = Path(os.path.abspath(folder))  # ".." resolved, as Hydra's output_dir is
    top = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        top = path
    folder.mkdir(parents=True, exist_ok=True)
    if top is not None:
        _created[folder] = top


def remove_if_unstarted(folder: str | Path) -> bool:
    """Removes the run folder (and the empty parents it created) when this run created it and
    it holds nothing but start-up files; never a folder that existed before (a resumed run)."""
    folder = Path(os.path.abspath(folder))
    top = _created.get(folder)
    if top is None or not folder.is_dir() or \
            any(p.name not in START_FILES for p in folder.iterdir()):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if top not in (parent, *parent.parents) or any(parent.iterdir()):
            break
        parent.rmdir()
    return True
