"""Optional speed switches for the networks: channels-last memory format and torch.compile."""

import torch
from torch import nn


def accelerate(module: nn.Module, channels_last: bool = False, compile: bool = False) -> nn.Module:
    """Applies ``trainer.channels_last`` and ``trainer.compile`` to G and D, in place.

    ``nn.Module.compile()`` compiles each network's forward without wrapping it, so parameter
    names, and with them checkpoints, stay the same as without compile.
    """
    if channels_last:
        # Only 4-D weights change layout; convolutions then run in NHWC, which tensor cores prefer.
        module.to(memory_format=torch.channels_last)
    if compile:
        for net in module.task.nets.values():
            net.compile()
    return module
