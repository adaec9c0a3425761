"""Every private API of another library that ganrun uses, in one place, each with why no
public one does. ``tests/test_private_apis.py`` checks that each still exists and names the
library versions they were checked against: a library upgrade that drops one fails there, not
in the middle of a user's run.

Public APIs replaced what they could: the gradient norm uses ``torch.nn.utils.get_total_norm``
(was ``torch._foreach_norm``).
"""

from __future__ import annotations

import argparse
from typing import Callable

# ---- Hydra -------------------------------------------------------------------------------------
# ganrun's sub-commands (`ganrun train ...`) parse their own command line: `@hydra.main` reads
# sys.argv, which holds `train`, and Lightning's DDP launcher must re-run sys.argv unchanged.
# Hydra has no public entry point that takes parsed arguments, so ganrun calls what
# `@hydra.main` calls.


def hydra_args_parser() -> argparse.ArgumentParser:
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


NOT_COMPOSED = object()


def run_hydra(args: argparse.Namespace, parser: argparse.ArgumentParser,
              task: Callable, config_path: str, config_name: str,
              composed_mode=NOT_COMPOSED) -> None:
    """``composed_mode``: ``hydra.mode`` of the config ganrun composed for this command line, if
    it did. hydra-core 1.3's ``Hydra.get_mode`` composes the whole config again only to read that
    value (0.23 s of a 1.6 s one-iteration run in a warm process on a 2-core CPU:
    scripts/bench_startup.py); 1.4 reads it from the overrides, and is left alone."""
    import hydra
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import _run_hydra

    get_mode = Hydra.get_mode
    if composed_mode is not NOT_COMPOSED and hydra.__version__.startswith("1.3."):
        Hydra.get_mode = lambda self, *args, **kwargs: composed_mode
    try:
        _run_hydra(args=args, args_parser=parser, task_function=task, config_path=config_path,
                   config_name=config_name)
    finally:
        Hydra.get_mode = get_mode


def compose_like_a_run(config_dir: str, user_dir: str | None, config_name: str,
                       overrides: list[str]):
    """The config Hydra composes for a run, ``hydra`` node included, with ``--config-dir``
    searched first as the command line does (the public ``compose`` API cannot put a folder
    before the main config's)."""
    import os

    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    search_path = create_automatic_config_search_path(None, None, config_dir)
    if user_dir and os.path.isdir(user_dir):
        search_path.prepend(provider="command-line", path=f"file://{os.path.abspath(user_dir)}",
                            anchor=SearchPathQuery(provider="schema"))
    hydra = Hydra.create_main_hydra2(task_name=config_name, config_search_path=search_path)
    try:
        return hydra.compose_config(config_name, overrides, run_mode=RunMode.RUN,
                                    with_log_configuration=False)
    finally:
        GlobalHydra.instance().clear()


# ---- Lightning ---------------------------------------------------------------------------------

def relaunches_the_script(strategy) -> bool:
    """Whether the strategy starts its other ranks by running the command line again (DDP's
    subprocess launcher), which under a Hydra sweep would re-run the whole sweep."""
    from pytorch_lightning.strategies.launchers.subprocess_script import \
        _SubprocessScriptLauncher

    return isinstance(getattr(strategy, "launcher", None), _SubprocessScriptLauncher)


def take_over_sigterm(trainer) -> None:
    """Lightning's signal connector exits the process on SIGTERM once its flag is set; ganrun's
    own handler saves a checkpoint first, so the flag is cleared."""
    trainer._signal_connector.received_sigterm = False


# ---- PyTorch -----------------------------------------------------------------------------------

def grad_scaler_scale(scaler):
    """The fp16 loss scale as the device tensor it is: the public ``get_scale()`` reads it on
    the host, which would wait for the device after every update."""
    import torch

    scale = getattr(scaler, "_scale", None)
    return scale if isinstance(scale, torch.Tensor) else torch.tensor(scaler.get_scale())

# oneDNN's fused convolution + pointwise op and its weight packing (what torch.compile emits on
# CPUs), used for the FID Inception on a CPU; absent from builds without oneDNN, where the plain
# convolution runs instead (see ganrun.metrics.inception).

def onednn_ops():
    import torch

    ops = torch.ops.mkldnn if torch.backends.mkldnn.is_available() else None
    needed = ("_convolution_pointwise", "_reorder_convolution_weight")
    return ops if ops is not None and all(hasattr(ops, name) for name in needed) else None


# What torch.compile really did (ganrun.runner.acceleration): dynamo's counters are the only
# record of the graphs it compiled, the graph breaks and the CUDA graphs inductor skipped;
# ``calculate_time_spent`` its compile time. ``nn.Module.compile()`` keeps the compiled call in
# ``_compiled_call_impl``; wrapping it counts each unit's graphs outside the traced region.

def compile_counters():
    """dynamo's counters: {group: Counter} (``stats.unique_graphs``, ``frames.total``,
    ``graph_break``, ``inductor.cudagraph_skips``)."""
    from torch._dynamo.utils import counters

    return counters


def compile_seconds() -> float:
    """Seconds this process spent compiling (dynamo's frames and the backward graphs)."""
    from torch._dynamo import utils

    spent = getattr(utils, "calculate_time_spent", lambda: {})()
    if "total_wall_time" in spent:
        return float(spent["total_wall_time"])
    return float(sum(v for k, v in spent.items() if k.startswith("entire_")))


def wrap_compiled_call(module, wrapper):
    """Replaces the call ``module.compile()`` installed by ``wrapper(call)``; returns it."""
    wrapped = wrapper(module._compiled_call_impl)
    module._compiled_call_impl = wrapped
    return wrapped


# The versions every private API above was last checked against (tests/test_private_apis.py;
# on hydra-core 1.4 through tests/test_hydra_lines.py).
CHECKED_WITH = {"hydra-core": "1.3.8 and 1.4.0rc3", "pytorch-lightning": "2.6.6", "torch": "2.14.1"}
