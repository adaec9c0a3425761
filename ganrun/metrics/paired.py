"""How good a paired translator (task=pix2pix) is, on the first test pairs (the same pairs on
every run, ``ganrun.tasks.pix2pix.test_pairs``):

- ``psnr`` and ``ssim`` of the outputs against the targets (torchmetrics, images in [0, 1],
  PSNR averaged per image); for inpainting ``psnr_hole`` and ``ssim_hole``: the PSNR of the
  hole's pixels only, and torchmetrics' SSIM map averaged over the hole;
- ``fid``: the outputs against the real targets of the same pairs;
- the same values for the degradation's non-learnt baseline, suffixed with its name
  (``psnr_bicubic`` for super-resolution, ``psnr_hole_fill`` for inpainting), measured on the
  same images, so one line says whether the GAN beats the obvious.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import (peak_signal_noise_ratio,
                                           structural_similarity_index_measure)

from ganrun.metrics.base import Metric, not_measured
from ganrun.metrics.suite import fids_against


def unit(images: torch.Tensor) -> torch.Tensor:
    return images.float().add(1).div(2).clamp(0, 1)


def psnr(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean per-image PSNR (dB) of [-1, 1] images, compared in [0, 1]."""
    return peak_signal_noise_ratio(unit(outputs), unit(targets), data_range=1.0,
                                   dim=(1, 2, 3), reduction="elementwise_mean").item()


def ssim(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean SSIM of [-1, 1] images, compared in [0, 1] (Gaussian window 11, sigma 1.5)."""
    return structural_similarity_index_measure(unit(outputs), unit(targets),
                                               data_range=1.0).item()


def hole_psnr(outputs, targets, mask) -> float:
    """Mean over images of the PSNR of the pixels inside each image's hole."""
    values = []
    for output, target, hole in zip(unit(outputs), unit(targets), mask.bool()):
        inside = hole.expand_as(output)
        if inside.any():
            values.append(peak_signal_noise_ratio(output[inside], target[inside],
                                                  data_range=1.0))
    return torch.stack(values).mean().item()


def hole_ssim(outputs, targets, mask) -> float:
    """torchmetrics' SSIM map averaged over the hole pixels (of all images and channels)."""
    _, full = structural_similarity_index_measure(unit(outputs), unit(targets), data_range=1.0,
                                                  reduction="none", return_full_image=True)
    weights = mask.expand_as(full)
    return ((full * weights).sum() / weights.sum().clamp(min=1)).item()


def scores(outputs, targets, mask, suffix: str = "") -> dict[str, float]:
    """PSNR and SSIM; with an inpainting ``mask`` (1 = hole) also those of the hole."""
    if mask is not None:
        return {f"psnr_hole{suffix}": hole_psnr(outputs, targets, mask),
                f"ssim_hole{suffix}": hole_ssim(outputs, targets, mask),
                f"psnr{suffix}": psnr(outputs, targets), f"ssim{suffix}": ssim(outputs, targets)}
    return {f"psnr{suffix}": psnr(outputs, targets), f"ssim{suffix}": ssim(outputs, targets)}


class PairedMetrics(Metric):
    """Evaluated on a paired translator (its test pairs, outputs and baseline)."""

    def __init__(self, num_samples: int = 1000, fid_samples: int = 500,
                 baseline_fid: bool = True, batch_size: int = 100):
        self.num_samples, self.fid_samples = num_samples, fid_samples
        self.baseline_fid, self.batch_size = baseline_fid, batch_size

    def check_model(self, model) -> None:
        if model.translator is None or not model.translator.paired:
            raise not_measured("metrics=paired", model,
                               "a paired translator (task=pix2pix: pix2pix, super-resolution, "
                               "inpainting)")

    def evaluate_model(self, model, data) -> dict[str, float]:
        self.check_model(model)
        task = model.translator
        # num_samples bounds every pass, the FIDs' too.
        fid_samples = min(self.fid_samples, self.num_samples)
        inputs, targets = task.test_pairs(data, max(self.num_samples, fid_samples))
        outputs = torch.cat([task.translate(part.to(task.device)).cpu()
                             for part in inputs.split(self.batch_size)])
        n = min(self.num_samples, len(inputs))
        holes = task.hole(inputs)
        values = scores(outputs[:n], targets[:n], None if holes is None else holes[:n])
        fakes = {"fid": outputs}
        baseline = task.baseline(inputs)
        if baseline is not None:
            name, guess = baseline
            values.update(scores(guess[:n], targets[:n], None if holes is None else holes[:n],
                                 f"_{name}"))
            if self.baseline_fid:
                fakes[f"fid_{name}"] = guess
        if fid_samples:
            k = min(fid_samples, len(inputs))
            values.update(fids_against(targets[:k], {key: v[:k] for key, v in fakes.items()},
                                       self.batch_size, "Target features"))
            values["fid_samples"] = k
        return {**values, "num_samples": n}
