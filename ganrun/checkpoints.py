"""Reading checkpoints with clear errors for missing, truncated or foreign files."""

from pathlib import Path

import torch

from ganrun.errors import UserError


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, or a ``UserError`` saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Checkpoint '{path}' does not exist. Give the path of a .ckpt file, "
                        "e.g. outputs/<date>/<time>/checkpoints/last.ckpt.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserError(f"Checkpoint '{path}' cannot be read ({type(err).__name__}: {err}); it "
                        "is truncated or not a checkpoint. Use another one, such as an "
                        "iter_<n>.ckpt from the same checkpoints/ folder.") from None
    if not isinstance(checkpoint, dict) or "ganrun" not in checkpoint:
        raise UserError(f"'{path}' is not a ganrun checkpoint (it has no 'ganrun' section). "
                        "Give a checkpoint written by `ganrun train`.")
    return checkpoint


def load_gan(path: str | Path, device: str | torch.device = "cpu"):
    """The GAN module of a checkpoint, rebuilt from the config it was trained with, in eval
    mode on ``device``. Returns ``(module, config)``."""
    from omegaconf import OmegaConf

    from ganrun.build import build_module

    checkpoint = read_checkpoint(path)
    state = checkpoint["ganrun"]
    cfg = OmegaConf.create(state["config"])
    module = build_module(cfg, state["data_shape"], state.get("choices"))
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise UserError(f"Checkpoint '{path}' does not fit the model its config describes "
                        f"(missing: {', '.join(missing) or 'none'}; unexpected: "
                        f"{', '.join(unexpected) or 'none'}). It was written by an incompatible "
                        "version of the model code.")
    module.on_load_checkpoint(checkpoint)
    return module.to(device).eval(), cfg
