"""Optional speed switches for the networks: channels-last memory format, torch.compile, CUDA
graphs, and the device's fp32 math (``trainer.tf32``, ``trainer.cudnn_benchmark``); and the
record of what each of them really did, ``acceleration.json`` in the run folder.

``trainer.compile=true`` compiles each of the task's compile units (``Task.compile_units()``:
every network's forward by default; StyleGAN2's mapping, synthesis and D) with
``nn.Module.compile()``, which keeps parameter names, and with them checkpoints, as they are;
``trainer.compile_backend`` picks the compiler (``inductor``, the default; ``aot_eager`` traces
forward and backward without generating code, quick to check on a CPU). ``trainer.cuda_graphs=true``
compiles with ``mode="reduce-overhead"``: inductor captures each unit's forward and backward into
CUDA graphs and replays them, so a step launches a handful of graphs instead of hundreds of small
kernels. Graphs need a CUDA device, static shapes (a fixed batch: ``dataset.drop_last=true``) and
one process per device without DDP's collectives inside the backward; where a condition does not
hold the run trains without them and says why in one line. The update step itself (fused Adam,
one kernel per player) stays outside the graphs.

A replayed graph writes its outputs into the same memory every time, so the phases read no
network output after a later network call started a new step of the graph tree
(``ganrun.tasks.base.graph_safe``; tests/test_acceleration.py checks every task).

What happened is counted, not assumed: each unit's compiled call counts the graphs dynamo made
on its calls (a later call that compiles again is a recompile), and the run's dynamo counters
give graph breaks and the CUDA graphs inductor skipped, with the reasons torch logged. A
variant that fell back (no graph compiled, the recompile limit hit, a skipped CUDA graph, a
condition above) says so in ``fallback``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganrun.private_apis import compile_counters, compile_seconds, wrap_compiled_call

log = logging.getLogger("ganrun")

# Warnings torch logs when a compiled region falls back; kept for the record.
FALLBACK_MESSAGES = ("skipping cudagraphs", "torch._dynamo hit config.")


def graph_obstacle(cuda: bool, drop_last: bool, distributed: bool, backend: str) -> str | None:
    """Why this run cannot use CUDA graphs, or None when it can."""
    if not cuda:
        return "it trains on the CPU (CUDA graphs need a CUDA device)"
    if not drop_last:
        return "dataset.drop_last=false gives the last batch of an epoch another shape"
    if distributed:
        return "DDP all-reduces gradients inside the backward, which a graph cannot hold"
    if backend != "inductor":
        return f"trainer.compile_backend={backend} (graphs come from inductor)"
    return None


def set_fp32_math(tf32: bool, cudnn_benchmark: bool) -> dict:
    """``trainer.tf32``: fp32 matrix products and convolutions on tensor cores in TF32 (10-bit
    mantissa) or in full fp32. PyTorch's own default mixes them (convolutions TF32, products
    not); ganrun sets both alike so that "fp32" means one thing. ``trainer.cudnn_benchmark``:
    cuDNN times its algorithms for each new input shape once (fixed batches: a one-off cost).
    Returns the settings as the process now has them, for the record."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    return fp32_math()


def fp32_math() -> dict:
    return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark}


class CompiledUnit:
    """A unit's compiled call (what ``nn.Module.compile()`` installs), counting the graphs
    dynamo compiles on its calls and the time those calls took."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.calls = self.graphs = self.compiling_calls = 0
        self.compile_s = 0.0

    def __call__(self, *args, **kwargs):
        before = compile_counters()["stats"]["unique_graphs"]
        start = time.perf_counter()
        out = self.compiled(*args, **kwargs)
        new = compile_counters()["stats"]["unique_graphs"] - before
        self.calls += 1
        if new:
            self.graphs += new
            self.compiling_calls += 1
            self.compile_s += time.perf_counter() - start
        return out

    def record(self) -> dict:
        return {"calls": self.calls, "graphs": self.graphs,
                "recompiles": max(self.compiling_calls - 1, 0),
                "compile_s": round(self.compile_s, 3)}


class FallbackLog(logging.Handler):
    """Keeps torch's warnings of a compiled region falling back (a skipped CUDA graph, the
    recompile limit); torch still prints them as usual."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        text = " ".join(record.getMessage().split())
        if text.startswith(FALLBACK_MESSAGES) and len(self.messages) < 20:
            self.messages.append(text[:300])


@dataclass
class Acceleration:
    """What a run asked for and, after training (``record()``), what it got."""

    compile: bool = False
    cuda_graphs: bool = False
    backend: str = "inductor"
    channels_last: bool = False
    math: dict = field(default_factory=fp32_math)
    graphs_obstacle: str | None = None
    mode: str | None = None
    units: dict[str, CompiledUnit] = field(default_factory=dict)
    watch: FallbackLog | None = None
    started: dict = field(default_factory=dict)

    def counted(self, group: str) -> dict[str, int]:
        """A group of dynamo's counters, counting from ``accelerate()`` on."""
        before = self.started.get("counters", {}).get(group, {})
        now = compile_counters()[group]
        return {key: now[key] - before.get(key, 0) for key in now
                if now[key] != before.get(key, 0)}

    def record(self) -> dict:
        frames, skips = self.counted("frames"), self.counted("inductor").get("cudagraph_skips", 0)
        breaks = self.counted("graph_break")
        warnings = self.watch.messages if self.watch else []
        units = {name: unit.record() for name, unit in self.units.items()}
        # Past the recompile limit dynamo runs the unit eagerly: not compiled any more.
        limited = any(m.startswith("torch._dynamo hit") for m in warnings)
        compiled = self.compile and bool(units) and not limited and all(
            u["graphs"] > 0 for u in units.values() if u["calls"])
        graphs = self.mode == "reduce-overhead" and compiled and skips == 0
        return {
            "asked": {"compile": self.compile, "cuda_graphs": self.cuda_graphs,
                      "compile_backend": self.backend, "channels_last": self.channels_last},
            "math": self.math,
            "compiled": compiled, "cuda_graphs": graphs, "mode": self.mode,
            "fallback": self.fallback(units, compiled, skips, warnings),
            "units": units,
            "dynamo": {"frames": frames.get("total", 0), "frames_ok": frames.get("ok", 0),
                       "graph_breaks": sum(breaks.values()),
                       "graph_break_reasons": sorted(breaks, key=breaks.get, reverse=True)[:3],
                       "cudagraph_skips": skips, "warnings": warnings},
            "compile_s": round(compile_seconds() - self.started.get("seconds", 0.0), 3)
            if self.compile else 0.0,
        }

    def fallback(self, units: dict, compiled: bool, skips: int, warnings: list) -> str | None:
        """Why the run did not get all it asked for; None when it did."""
        if self.cuda_graphs and self.graphs_obstacle:
            return f"no CUDA graphs: {self.graphs_obstacle}"
        if not self.compile:
            return None
        limit = [m for m in warnings if m.startswith("torch._dynamo hit")]
        if limit:
            return f"dynamo fell back to eager: {limit[0]}"
        idle = [name for name, u in units.items() if u["calls"] and not u["graphs"]]
        if not compiled:
            return f"no graph compiled for {', '.join(idle) or 'any unit'}"
        if self.mode == "reduce-overhead" and skips:
            reasons = [m for m in warnings if m.startswith("skipping cudagraphs")]
            return f"inductor skipped {skips} CUDA graph(s): " + (
                reasons[0] if reasons else "see TORCH_LOGS=perf_hints")
        return None

    def write(self, folder: str | Path) -> dict:
        """``acceleration.json`` in the run folder, and a line when the run fell back."""
        record = self.record()
        Path(folder, "acceleration.json").write_text(json.dumps(record, indent=1))
        if record["fallback"] and self.compile:
            log.warning("trainer.compile/cuda_graphs: %s (acceleration.json)", record["fallback"])
        if self.watch is not None:
            logging.getLogger("torch").removeHandler(self.watch)
        return record


def accelerate(module: nn.Module, channels_last: bool = False, compile: bool = False,
               cuda_graphs: bool = False, backend: str = "inductor", cuda: bool = False,
               drop_last: bool = True, distributed: bool = False) -> Acceleration:
    """Applies ``trainer.channels_last``, ``trainer.compile`` and ``trainer.cuda_graphs`` to
    the task's compile units, in place; returns the record to ``write()`` after training."""
    acceleration = Acceleration(compile=compile or cuda_graphs, cuda_graphs=cuda_graphs,
                                backend=backend, channels_last=channels_last)
    if channels_last:
        # Only 4-D weights change layout; convolutions then run in NHWC, which tensor cores prefer.
        module.to(memory_format=torch.channels_last)
    if cuda_graphs:
        acceleration.graphs_obstacle = graph_obstacle(cuda, drop_last, distributed, backend)
        if acceleration.graphs_obstacle:
            log.warning("trainer.cuda_graphs=true: training without CUDA graphs, because %s%s.",
                        acceleration.graphs_obstacle,
                        "; the networks are still compiled" if compile else "")
            acceleration.compile = compile
        else:
            acceleration.mode = "reduce-overhead"
    if acceleration.compile:
        acceleration.started = {"seconds": compile_seconds(), "counters": {
            group: dict(values) for group, values in compile_counters().items()}}
        acceleration.watch = FallbackLog()
        logging.getLogger("torch").addHandler(acceleration.watch)
        for name, unit in module.task.compile_units().items():
            unit.compile(backend=backend, mode=acceleration.mode)
            # Counted around the compiled call, outside the traced region.
            acceleration.units[name] = wrap_compiled_call(unit, CompiledUnit)
    return acceleration
