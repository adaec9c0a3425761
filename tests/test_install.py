"""A non-editable install finds its configs from any folder."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_non_editable_install_runs_from_any_folder(tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(REPO)], check=True)
    assert (site / "ganrun" / "conf" / "train.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", "import ganrun.config as c, sys; print(c.config_dir()); "
         "sys.argv = ['ganrun', 'train', 'model=mlp', '--cfg', 'job']; "
         "from ganrun.cli import main; main()"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[0] == str(site / "ganrun" / "conf")
    assert "ganrun.nets.mlp.Generator" in proc.stdout
