"""The documentation: the MkDocs site builds with --strict (a broken link, a missing page or a
page left out of the navigation fails), and every relative link and picture of README.md
exists."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    built = {p.parent.name + ".md" for p in (tmp_path / "site").rglob("index.html")}
    assert pages - {"index.md"} <= built, pages - built
    assert "not included in the \"nav\"" not in proc.stderr, proc.stderr


def test_readme_links_and_pictures_exist():
    text = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "README.md links to the docs and shows pictures"
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, missing
    assert len(text.splitlines()) <= 300
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures and all((REPO / p).stat().st_size < 500_000 for p in pictures)


def test_every_picture_in_docs_is_shown_somewhere():
    text = (REPO / "README.md").read_text() + "".join(
        p.read_text() for p in (REPO / "docs").glob("*.md"))
    unused = [p.name for p in (REPO / "docs" / "images").glob("*.png") if p.name not in text]
    assert not unused, f"pictures no page shows (remove them or show them): {unused}"
