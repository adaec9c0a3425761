"""Optional speed switches for the networks: channels-last memory format, torch.compile, and
CUDA graphs.

``trainer.compile=true`` compiles each network's forward (``nn.Module.compile()``, which keeps
parameter names, and with them checkpoints, as they are); ``trainer.compile_backend`` picks the
compiler (``inductor``, the default; ``aot_eager`` traces forward and backward without generating
code, quick to check on a CPU). ``trainer.cuda_graphs=true`` compiles with
``mode="reduce-overhead"``: inductor captures each network's forward and backward into CUDA graphs
and replays them, so a step launches a handful of graphs instead of hundreds of small kernels.
Graphs need a CUDA device, static shapes (a fixed batch: ``dataset.drop_last=true``) and one
process per device without DDP's collectives inside the backward; where a condition does not
hold the run trains without them and says why in one line. The update step itself (fused
Adam, one kernel per player) stays outside the graphs.
"""

import logging

import torch
from torch import nn

log = logging.getLogger("ganrun")


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


def accelerate(module: nn.Module, channels_last: bool = False, compile: bool = False,
               cuda_graphs: bool = False, backend: str = "inductor", cuda: bool = False,
               drop_last: bool = True, distributed: bool = False) -> nn.Module:
    """Applies ``trainer.channels_last``, ``trainer.compile`` and ``trainer.cuda_graphs`` to
    the task's networks, in place."""
    if channels_last:
        # Only 4-D weights change layout; convolutions then run in NHWC, which tensor cores prefer.
        module.to(memory_format=torch.channels_last)
    mode = None
    if cuda_graphs:
        obstacle = graph_obstacle(cuda, drop_last, distributed, backend)
        if obstacle:
            log.warning("trainer.cuda_graphs=true: training without CUDA graphs, because %s%s.",
                        obstacle, "; the networks are still compiled" if compile else "")
        else:
            mode, compile = "reduce-overhead", True
    if compile:
        for net in module.task.nets.values():
            net.compile(backend=backend, mode=mode)
    return module
