"""Writing into folders that may come from someone else (a shared sweep, a run folder to resume,
an export folder to overwrite, an output folder): a file is written next to its target under a
fresh name, never through an existing one, then renamed over the target. A target that is a
symbolic link, or that lies outside the folder it is meant for, is refused: following it would
overwrite a file elsewhere (``report.md -> ~/.bashrc``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ganrun.errors import UserError

# Folders of a run that ganrun writes into (and Hydra, which follows links when it writes).
SCANNED_DEPTH = 3


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_target(path: Path, folder: Path | None = None) -> Path:
    """``path`` if writing it stays inside ``folder`` (default: its own parent) and replaces no
    symbolic link; else a ``UserError`` naming the file."""
    path = Path(path)
    folder = Path(folder) if folder is not None else path.parent
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link (to {os.readlink(path)!r}); ganrun does not "
                        "write through links, which could overwrite a file elsewhere. Remove the "
                        "link (the folder may come from someone else), or write somewhere else.")
    inside = folder.resolve()
    if path.parent.resolve() != inside and inside not in path.parent.resolve().parents:
        raise UserError(f"{path} lies outside {folder} (through a link on its way), where ganrun "
                        "was asked to write. Remove the link, or write somewhere else.")
    return path


def write_bytes(path: Path, data: bytes, folder: Path | None = None) -> Path:
    """Writes ``data`` to ``path`` (see the module's docstring); a reader never sees half a
    file. The file gets the permissions a new file gets from the umask."""
    path = check_target(Path(path), folder)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # replaces a link planted meanwhile, never writes through it
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str, folder: Path | None = None) -> Path:
    return write_bytes(path, text.encode("utf-8"), folder)


def links_in(folder: Path, depth: int = SCANNED_DEPTH) -> list[Path]:
    """The symbolic links in ``folder`` and its sub-folders down to ``depth`` levels."""
    found, todo = [], [(Path(folder), 0)]
    while todo:
        current, level = todo.pop()
        try:
            entries = list(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                found.append(entry)
            elif entry.is_dir() and level < depth:
                todo.append((entry, level + 1))
    return sorted(found)


def refuse_links(folder: Path, what: str) -> None:
    """A ``UserError`` when ``folder`` (a run folder about to be written again) holds symbolic
    links: ganrun, Hydra and Lightning would write through them."""
    links = links_in(folder) if Path(folder).is_dir() else []
    if links:
        shown = ", ".join(str(p) for p in links[:3]) + (" ..." if len(links) > 3 else "")
        raise UserError(f"{what} {folder} holds symbolic links ({shown}). Writing into it would "
                        "write through them into files elsewhere, so nothing was written. Remove "
                        "the links (the folder may come from someone else), or use another "
                        "folder.")
