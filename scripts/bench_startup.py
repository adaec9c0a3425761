"""How long `ganrun train` takes from its command line to its first iteration's end, in one warm
process (imports done), with Hydra 1.3 composing the config a third time to read `hydra.mode`
(the baseline) and with ganrun handing it the mode of the config it composed for its checks.

    python scripts/bench_startup.py [--rounds 5] [--data /usr/share/datasets/fashion-mnist]

Prints the median seconds of each and their ratio; the rounds alternate so that a machine's
load changes both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ganrun from this tree


def one_run(data: str, folder: Path, hand_over_the_mode: bool) -> float:
    from ganrun import cli
    from ganrun.commands import hydra_app, train
    from ganrun.private_apis import NOT_COMPOSED

    handed = hydra_app.composed_mode if hand_over_the_mode else (lambda cfg: NOT_COMPOSED)
    sys.argv = ["ganrun", "train", "debug=tiny", "trainer.max_steps=1", "dataset.download=false",
                f"dataset.root={data}", f"hydra.run.dir={folder}"]
    saved, train.composed_mode = train.composed_mode, handed
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli.main()
    except SystemExit as exit_:
        if exit_.code:
            raise RuntimeError(f"ganrun train exited {exit_.code}") from None
    finally:
        train.composed_mode = saved
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    import hydra

    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(args.data, Path(tmp) / "warm-up", True)  # first-use costs out of both
        for n in range(args.rounds):
            for handed in (False, True):
                times[handed].append(one_run(args.data, Path(tmp) / f"{n}-{handed}", handed))
    baseline, handed = statistics.median(times[False]), statistics.median(times[True])
    print(f"hydra-core {hydra.__version__}, {args.rounds} rounds, median seconds from the "
          f"command line to the end of a 1-iteration debug=tiny run:")
    print(f"  Hydra composes hydra.mode itself (baseline): {baseline:.2f} s")
    print(f"  mode handed over by ganrun:                  {handed:.2f} s")
    print(f"  ratio: {handed / baseline:.2f} of the baseline ({baseline - handed:.2f} s saved)")


if __name__ == "__main__":
    main()
