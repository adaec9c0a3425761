"""The suite's test ids are the same in every process: pytest-xdist stops the whole run with
"Different tests were collected between gw0 and gw1" when an id depends on the time (a gzip
header's mtime), on hash randomization or on a random draw."""

import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def collected(hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                           "-p", "no:cacheprovider", str(TESTS)],
                          cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_ids_do_not_depend_on_the_time_or_hash_seed():
    first = collected("1")
    time.sleep(1.1)  # a gzip header stores whole seconds
    second = collected("2")
    assert len(first) > 400
    assert first == second, sorted(set(first) ^ set(second))[:10]
