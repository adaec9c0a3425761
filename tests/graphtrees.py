"""A test-only callback: the memory rule of inductor's CUDA graph trees
(``trainer.cuda_graphs=true``), played on a CPU over each task's compile units.

Every call of a compile unit stands for a replay of its graph. A replay writes its outputs into
the tree's memory pool, and a call starts a new step of the tree (a "generation") unless a
forward's backward is still pending; a new step hands the memory of every earlier output back
to the pool, where the next replay overwrites it, and torch raises on reading those tensors
(torch/_inductor/cudagraph_trees.py: ``can_start_new_generation``,
``dealloc_current_path_weakrefs``). Here a new step fills every earlier output with NaN (what
aliases such as ``.detach()`` would read: someone else's data) and makes the tensor itself
raise on access, as torch does. A phase that keeps an output across such a call trains
differently or fails; a graph-safe one trains exactly as without this callback.

Calls inside ``torch.compiler.set_stance("force_eager")`` (the penalties) run eagerly and are
no replay; outputs that share memory with an input or a parameter are not pool memory.
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import pytorch_lightning as pl
import torch

MESSAGE = "graphtrees: this network output was overwritten by a later CUDA graph replay"


def tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors(item)]
    return []


def eager_stance() -> bool:
    from torch._dynamo.eval_frame import _stance

    return _stance.stance == "force_eager"


class GraphTrees(pl.Callback):
    """Installs the rule on ``pl_module.task.compile_units()`` when training starts; counts
    the steps it started (``steps``) and the outputs it overwrote (``overwritten``)."""

    def __init__(self, dirpath: str):
        self.path = Path(dirpath) / "graphtrees.json"
        self.outputs: list[weakref.ref] = []
        self.pending_backward = False
        self.steps = self.overwritten = 0
        self.handles = []

    def on_train_start(self, trainer, pl_module):
        for unit in pl_module.task.compile_units().values():
            self.handles.append(unit.register_forward_pre_hook(self.before, with_kwargs=True))
            self.handles.append(unit.register_forward_hook(self.after, with_kwargs=True))

    def on_train_end(self, trainer, pl_module):
        for handle in self.handles:
            handle.remove()
        self.path.write_text(json.dumps({"steps": self.steps, "overwritten": self.overwritten}))

    def before(self, unit, args, kwargs):
        if eager_stance() or self.pending_backward:
            return
        self.steps += 1
        for ref, memory in self.outputs:
            self.overwrite(ref(), memory)
        self.outputs = []

    def overwrite(self, output: torch.Tensor | None, memory: torch.Tensor) -> None:
        """NaN into the output's memory (read by any alias that outlived the output), and an
        error on the output itself if it is still alive."""
        if memory.is_floating_point():
            memory.fill_(float("nan"))
        if output is not None:
            torch._C._set_storage_access_error_msg(output, MESSAGE)
        self.overwritten += 1

    def after(self, unit, args, kwargs, result):
        if eager_stance():
            return
        own = {t.untyped_storage().data_ptr() for t in [*tensors(args), *tensors(kwargs),
                                                        *unit.parameters(), *unit.buffers()]}
        for output in tensors(result):
            if output.untyped_storage().data_ptr() not in own:
                # The memory itself, through an alias of our own: an alias such as
                # .detach() keeps reading it after the output tensor is gone.
                self.outputs.append((weakref.ref(output), output.detach()))
            if output.requires_grad:
                self.pending_backward = True
                output.register_hook(self.backward_ran)

    def backward_ran(self, grad):
        self.pending_backward = False
