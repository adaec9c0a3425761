"""The FID Inception as a feature extractor: torchmetrics' own network and resize, run once per
image for every metric (FID, KID, IS and precision/recall all read the same features)."""

import hashlib
import logging
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.private_apis import onednn_ops
from ganrun.metrics.weights import (damaged_weights_error, has_classifier, missing_weights_error,
                                    weights_path)

log = logging.getLogger("ganrun")

# What decides the features besides the weights; part of the real-statistics cache key.
NETWORK = "torchmetrics NoTrainInceptionV3 inception-v3-compat pool3 2048"
RESIZE = "tf1-bilinear-299 (antialias=False)"


@dataclass
class Features:
    pool: torch.Tensor                   # (N, 2048) float32 pool3 features, on the CPU
    logits: torch.Tensor | None = None   # (N, 1008) unbiased logits, for Inception Score


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (N, 1 or 3, H, W) -> uint8 RGB, the input the Inception was trained on.

    Clamped before the cast: a generator's output can leave [-1, 1] a little and a plain cast
    would wrap it around; rounding makes the real data's [-1, 1] -> uint8 round trip exact."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images.add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class FoldedConv(nn.Module):
    """torch-fidelity's ``BasicConv2d`` (conv, batch norm, ReLU) with the batch norm folded into
    the convolution: one op instead of three per layer, features within ~1e-5 of the original.

    On the CPU the ReLU runs inside oneDNN's convolution (a post-op): a separate ReLU pass over
    every activation cost ~20% of the Inception's time on a 2-core CPU (profiled)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        self.conv = fuse_conv_bn_eval(block.conv.eval(), block.bn.eval())
        self._packed: dict[tuple, torch.Tensor] = {}  # input shape -> oneDNN weight (CPU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and ONEDNN is not None:
            conv = self.conv
            args = list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups
            return ONEDNN._convolution_pointwise(x, self.packed_weight(x, args), conv.bias,
                                                 *args, "relu", [], "")
        return torch.relu_(self.conv(x))

    def packed_weight(self, x: torch.Tensor, args: tuple) -> torch.Tensor:
        """The weight in oneDNN's blocked layout for this input shape, made once: reordering
        the plain weight inside every call took ~30% of the pass (ONEDNN_VERBOSE)."""
        shape = tuple(x.shape)
        if shape not in self._packed:
            if len(self._packed) >= 4:  # batch sizes of one evaluation: a few at most
                self._packed.clear()
            self._packed[shape] = ONEDNN._reorder_convolution_weight(
                self.conv.weight.detach(), *args, input_size=list(shape))
        return self._packed[shape]

    def _apply(self, fn, recurse=True):
        self._packed = {}  # moved or cast: the packed copies are of the old weight
        return super()._apply(fn, recurse)


# oneDNN's fused convolution + pointwise op and its weight packing (what torch.compile uses on
# CPUs); absent from builds without oneDNN, where the plain convolution and ReLU run instead.
ONEDNN = onednn_ops()


def fold_for_inference(net: nn.Module) -> nn.Module:
    """The network with every conv + batch norm + ReLU block folded (see ``FoldedConv``) and in
    channels-last memory format (oneDNN's and cuDNN's fast layout): about 2x faster on a CPU."""
    blocks = [(name, module) for name, module in net.named_modules()
              if type(module).__name__ == "BasicConv2d"]
    for name, block in blocks:
        parent, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent) if parent else net, attr, FoldedConv(block))
    return net.to(memory_format=torch.channels_last)


# Images per network call on a CPU: a 299x299 Inception's activations for ~20 images stay in
# the caches, and the pass ran 1.3x faster than on the metrics' batches of 100 (2-core Xeon,
# scripts/bench_fid.py). On a GPU whole batches are faster.
CPU_CHUNK = 20


class InceptionFeatures(nn.Module):
    """torchmetrics' ``NoTrainInceptionV3`` with the TF1-compatible resize (``antialias=False``)
    that torch-fidelity and published FID tables use; logits come from the same pass.

    ``fast`` (the default) folds the network for inference (``fold_for_inference``) and, on a
    CPU, runs it on chunks of ``CPU_CHUNK`` images; False keeps the network as torchmetrics
    builds it, on whole batches (the reference the fast one is tested against)."""

    def __init__(self, logits: bool = False, fast: bool = True):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        try:
            self.net = NoTrainInceptionV3("inception-v3-compat", ["2048"], antialias=False)
        except (OSError, RuntimeError) as err:  # URLError is an OSError
            if weights_path().is_file():
                raise damaged_weights_error(err) from None
            raise missing_weights_error(err) from None
        except (pickle.UnpicklingError, EOFError, ValueError, KeyError) as err:
            raise damaged_weights_error(err) from None
        if fast:
            self.net = fold_for_inference(self.net)
        self.fast, self.logits = fast, logits
        if logits and not has_classifier(self.net.state_dict()):
            raise UserError(
                f"Inception Score needs the Inception's 1008-way classifier, but {weights_path()} "
                "was converted from NVIDIA's export (`ganrun fid-weights`), which lacks it. Drop "
                "IS (e.g. metrics=fid) or put the original torch-fidelity file there: download "
                "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                f"{weights_path().name} on a machine with internet and copy it to "
                f"{weights_path().parent}/ (replacing the converted file).")

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> Features:
        """uint8 RGB images (N, 3, H, W) of any size -> their features, on the CPU."""
        images = images.to(self.net.fc.weight.device)
        chunk = CPU_CHUNK if self.fast and images.device.type == "cpu" else len(images)
        pool = torch.cat([self.net(part) for part in images.split(max(chunk, 1))]).float()
        # torch-fidelity's 'logits_unbiased', which IS uses: the classifier without its bias.
        logits = pool @ self.net.fc.weight.T if self.logits else None
        return Features(pool.cpu(), None if logits is None else logits.cpu())


_built: dict[tuple, InceptionFeatures] = {}


def shared_features(logits: bool, device: torch.device | str) -> InceptionFeatures:
    """The process's network for these weights (by digest), head and device: built once (about
    1.5 s on a CPU), then shared by every evaluation; weights replaced on disk build anew."""
    try:
        key = (weights_digest(), logits, str(torch.device(device)))
    except OSError:  # no weights file: building the network says what to do
        key = None
    if key not in _built:
        # Built under a forked RNG (its layers draw initial weights before the file's are
        # loaded), so that building it never moves the caller's random numbers.
        with torch.random.fork_rng(devices=[]):
            network = InceptionFeatures(logits=logits).to(device)
        if key is None:
            return network
        _built[key] = network
    return _built[key]


_digests: dict[tuple, str] = {}


def weights_digest(path: Path | None = None) -> str:
    """SHA-256 of the weights file, remembered per (path, size, mtime): the network's identity
    in cache keys, so that replaced weights never reuse statistics computed with others."""
    path = path or weights_path()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def quiet_torch_fidelity() -> None:
    # torch-fidelity warns that its TF1 resize is not exactly TF's on some inputs; known.
    warnings.filterwarnings("ignore", message=".*interpolate_bilinear_2d_like_tensorflow1x.*")
