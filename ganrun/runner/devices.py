"""Checking that the machine has the devices ``hardware`` asks for, before Lightning does
(its refusal is a traceback that does not say what to change)."""

import torch
from omegaconf import DictConfig, ListConfig

from ganrun.errors import UserError

PROG = "ganrun sample"

GPU_NAMES = ("gpu", "cuda")


def check_devices(hw: DictConfig) -> None:
    if str(hw.accelerator).lower() not in GPU_NAMES:
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = _wanted(hw.devices, count)
    if count == 0 or wanted > count:
        asked = "every GPU" if str(hw.devices) in ("auto", "-1") else \
            "a GPU" if wanted == 1 else f"{wanted} GPUs"
        raise UserError(f"The hardware config asks for {asked} (hardware.accelerator="
                        f"{hw.accelerator}, hardware.devices={_show(hw.devices)}), but "
                        f"{_machine(count)}. Use hardware=auto (a GPU if there is one, else the "
                        "CPU) or hardware=cpu, or set hardware.devices to at most the GPUs "
                        "this machine has.")


def _wanted(devices, count: int) -> int:
    if isinstance(devices, (list, ListConfig)):
        return max(len(devices), max(devices, default=-1) + 1)
    if str(devices) in ("auto", "-1"):
        return max(count, 1)
    return int(devices)


def _show(devices) -> str:
    return str(list(devices)) if isinstance(devices, ListConfig) else str(devices)


def _machine(count: int) -> str:
    if count:
        return f"this machine has {count}"
    if torch.version.cuda is None:
        return "this machine has none that PyTorch can use (this PyTorch is a CPU-only build)"
    return "this machine has none that PyTorch can use (no CUDA device is visible)"


def pick_device(name: str, prog: str = PROG) -> torch.device:
    """The torch device a command's ``device=`` key names; ``auto``: a GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{prog}: unknown device '{name}'. Use device=auto, cpu or cuda "
                        "(cuda:N for one GPU of several).") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{prog}: device={name} asks for a GPU, but torch sees none here. Use "
                        "device=cpu or device=auto.")
    return device
