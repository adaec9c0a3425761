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


def this_session(request) -> list[str] | None:
    """The ids this session collected, where it collected the whole suite as the subprocess
    does (no paths, -k, -m or --deselect given): a collection made minutes earlier, in another
    process, with another hash seed."""
    config = request.config
    whole = [Path(a).resolve() for a in config.args] in ([], [TESTS])
    if not whole or config.option.keyword or config.option.markexpr or config.option.deselect:
        return None
    return [item.nodeid for item in request.session.items]


def test_ids_do_not_depend_on_the_time_or_hash_seed(request):
    seed = os.environ.get("PYTHONHASHSEED", "")
    other = int(seed) + 1 if seed.isdigit() else 1  # not this session's
    first = this_session(request)
    if first is None:  # run on its own: two new collections
        first = collected(str(other))
        time.sleep(1.1)  # a gzip header stores whole seconds
        other += 1
    second = collected(str(other))
    assert len(first) > 400
    assert first == second, sorted(set(first) ^ set(second))[:10]
