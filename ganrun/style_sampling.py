"""W-space sampling of style-based generators (StyleGAN2: ``G.mapping`` then ``G.synthesis``):
the truncation trick around ``w_avg``, style-mixing grids and interpolation in W, as NVIDIA's
``generate.py`` and ``style_mixing.py`` do. Everything runs in eval mode, so ``w_avg`` is
never updated by sampling.
"""

import torch
from torch import nn

from ganrun.errors import UserError


def is_style_based(generator: nn.Module) -> bool:
    return hasattr(generator, "mapping") and hasattr(generator, "synthesis")


def _device(generator: nn.Module) -> torch.device:
    return next(generator.parameters()).device


@torch.no_grad()
def mapped_ws(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
              truncation: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
    """ws (N, num_ws, w_dim) of latents ``z``, truncated towards ``w_avg`` by ``truncation``
    (psi: 1 none, 0 every w is w_avg) on the first ``cutoff`` layers (null: all)."""
    device, was_training = _device(generator), generator.training
    generator.eval()
    try:
        labels = None if labels is None else labels.to(device)
        return generator.mapping(z.to(device), labels, truncation, cutoff)
    finally:
        generator.train(was_training)


@torch.no_grad()
def synthesize(generator: nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
    """Images in [-1, 1] (fp32) from ws."""
    was_training = generator.training
    generator.eval()
    try:
        return generator.synthesis(ws.to(_device(generator)), noise_mode).float()
    finally:
        generator.train(was_training)


def parse_layers(spec: str | None, num_ws: int) -> list[int]:
    """``"4-7"``, ``"0,1,5"`` or null (the fine half: ``num_ws // 2`` on) -> layer indices."""
    if spec is None or str(spec).strip() == "":
        return list(range(num_ws // 2, num_ws))
    layers: list[int] = []
    try:
        for part in str(spec).split(","):
            low, _, high = part.strip().partition("-")
            layers += range(int(low), int(high or low) + 1)
    except ValueError:
        layers = []
    if not layers or any(not 0 <= i < num_ws for i in layers):
        raise UserError(f"mix_layers='{spec}' is not a list of layers of this generator, which has "
                        f"{num_ws} style layers (0 = coarsest, {num_ws - 1} = finest). Use e.g. "
                        f"mix_layers={num_ws // 2}-{num_ws - 1} (a range) or mix_layers=0,1,2.")
    return sorted(set(layers))


def mixing_ws(row_ws: torch.Tensor, col_ws: torch.Tensor, layers: list[int]) -> torch.Tensor:
    """(rows * cols, num_ws, w_dim), row-major: row i's ws with ``layers`` from column j."""
    rows, cols = len(row_ws), len(col_ws)
    mixed = row_ws.unsqueeze(1).repeat(1, cols, 1, 1)
    mixed[:, :, layers] = col_ws.unsqueeze(0).expand(rows, -1, -1, -1)[:, :, layers]
    return mixed.reshape(rows * cols, *row_ws.shape[1:])


def interpolation_ws(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """(rows * steps, num_ws, w_dim): each row a straight line in W from start to end."""
    t = torch.linspace(0, 1, steps, device=start.device).view(1, steps, 1, 1)
    path = start.unsqueeze(1) + (end - start).unsqueeze(1) * t
    return path.reshape(-1, *start.shape[1:])
