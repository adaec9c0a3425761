"""ganrun on both Hydra lines: the suite runs on the hydra-core the package installs (1.3.x),
and this test runs the tests that lean most on Hydra (composition and every option, the private
APIs, `ganrun train -m`, the launcher presets, `ganrun tune`) again on hydra-core 1.4 with
omegaconf 2.4, installed beside it in their own folder by .ci/run:

    pip install --no-deps --target ~/.cache/ganrun-test/hydra-1.4 hydra-core==1.4.0rc3 omegaconf==2.4.1rc1
"""

import os
import subprocess
import sys
from pathlib import Path

import warm
from conftest import unavailable

REPO = Path(__file__).resolve().parents[1]
HYDRA_14 = Path(os.environ.get("GANRUN_HYDRA_14",
                               Path.home() / ".cache" / "ganrun-test" / "hydra-1.4"))
ON_HYDRA_14 = ["tests/test_config.py", "tests/test_private_apis.py", "tests/test_sweeps.py",
               "tests/test_tune.py::test_tune_prunes_fails_and_reports",
               "tests/test_tune.py::test_tune_refuses_what_would_fail_every_trial",
               "tests/test_tune.py::test_search_presets_compose",
               "tests/test_debug_tiny.py::test_every_preset_gets_the_tiny_sizes_of_its_model_and_task",
               "tests/test_debug_tiny.py::test_the_command_line_still_wins_over_debug_tiny"]

def test_hydra_1_4_line():
    if not (HYDRA_14 / "hydra").is_dir():
        unavailable(f"hydra-core 1.4 is not installed in {HYDRA_14} (.ci/run installs it; see "
                    "this file's docstring)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HYDRA_14), *filter(None, [os.environ.get("PYTHONPATH")])])}
    version = subprocess.run([sys.executable, "-c", "import hydra, omegaconf; "
                              "print(hydra.__version__, omegaconf.__version__)"],
                             env=env, capture_output=True, text=True, check=True).stdout.split()
    assert version[0].startswith("1.4") and version[1].startswith("2.4"), version
    # A warm process: forked from a server that imported hydra-core 1.4 from that folder.
    proc = warm.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *ON_HYDRA_14],
                    cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    print(f"hydra-core {version[0]}, omegaconf {version[1]}: {proc.stdout.splitlines()[-1]}")


def test_hydra_1_4_commands_say_nothing_of_deprecations(tmp_path):
    """Hydra 1.4 warns when instantiate builds a target no execution whitelist names, and
    omegaconf 2.4 when a resolver is registered the old way: a user on 1.4 sees neither. (Warm
    processes, forked from a server that imported hydra-core 1.4 from that folder.)"""
    if not (HYDRA_14 / "hydra").is_dir():
        unavailable(f"hydra-core 1.4 is not installed in {HYDRA_14}")
    env = {**os.environ, "PYTHONPATH": str(HYDRA_14), "OMP_NUM_THREADS": "1"}
    (tmp_path / "versions.py").write_text("import hydra, omegaconf\n"
                                          "print(hydra.__version__, omegaconf.__version__)\n")
    versions = warm.run([tmp_path / "versions.py"], env=env, capture_output=True, text=True)
    assert versions.stdout.startswith("1.4") and " 2.4" in versions.stdout, versions
    run = tmp_path / "run"
    commands = [
        ["train", "dataset=ring", "model=mlp", "trainer.max_steps=20", f"hydra.run.dir={run}",
         "logger=[tensorboard,csv]"],
        ["eval", f"ckpt={run}/checkpoints/last.ckpt", "metrics=modes"],
        ["export", f"ckpt={run}/checkpoints/last.ckpt", f"out={tmp_path / 'export'}"],
        ["sample", f"ckpt={tmp_path / 'export'}", "num=4", "format=npz", f"out={tmp_path / 's'}"],
    ]
    for args in commands:
        proc = warm.run(["-m", "ganrun", *args], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=300)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
        said = proc.stdout + proc.stderr
        assert "deprecated" not in said and "whitelist" not in said, (args, said[-3000:])
    assert (tmp_path / "s" / "samples.npz").is_file()
