"""A metric whose pass is slow on purpose (``+metrics.evaluate.slow._target_=slowmetric.Slow``):
a pass long enough to send a stop signal into. It writes ``marker`` when it starts."""

import time
from pathlib import Path

from ganrun.metrics.base import GeneratorMetric
from ganrun.progress import track


class Slow(GeneratorMetric):
    keys = ("slow",)

    def __init__(self, marker: str, batches: int = 600, seconds: float = 0.1):
        self.marker, self.batches, self.seconds = Path(marker), batches, seconds

    def evaluate(self, generate, data):
        self.marker.write_text("started")
        with track("Slow pass", self.batches, "batch") as bar:
            for _ in range(self.batches):
                generate(2)
                time.sleep(self.seconds)
                bar.advance()
        return {"slow": 1.0}
