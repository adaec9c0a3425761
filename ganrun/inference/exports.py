"""The export folder: ``model.safetensors`` (the inference object's weights: tensors only, no
code) and ``config.json`` (what rebuilds it), the layout of Hugging Face's
``save_pretrained``. Both are read as data: every ``_target_`` in the JSON must be one of
ganrun's own classes or trusted by the user (``ganrun.trust``), checked over the whole file
before anything is imported.

Format 2 (this version): ``model`` (the inference class and its settings) and ``nets`` (each
network's config). Format 1 (before the task contract: ``generator`` + ``generator_kwargs``,
translators' ``G_AB``/``G_BA``) is migrated when read.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ganrun.errors import UserError

from ganrun.inference.names import CONFIG, WEIGHTS  # noqa: E402 (re-exported)
EXPORT_FORMAT = 2

# Format 1's generators by the class their sampler needs (a fixed table of what format 1 held).
FORMAT_1_SAMPLERS = {"ganrun.nets.stylegan2.Generator": "ganrun.tasks.stylegan2.StyleSampler"}
FORMAT_1_TRANSLATOR = "ganrun.tasks.cyclegan.CycleTranslator"
FORMAT_1_DIRECTIONS = ("G_AB", "G_BA")


def is_export(path: str | Path) -> bool:
    return Path(path).is_dir()


def write_export(model: nn.Module, info: dict, out: Path) -> None:
    """``model.safetensors`` and ``config.json`` of an inference object, ``info`` (data set,
    metrics, iteration...) added to the config."""
    from safetensors.torch import save

    from ganrun import __version__
    from ganrun.files import write_bytes, write_text

    nets = {}
    for name, net in model.nets.items():
        config = getattr(net, "ganrun_config", None)
        if config is None:
            raise UserError(f"The network `{name}` of this model was not built from a config "
                            "ganrun can write down (it was made with objects as arguments), "
                            "so it cannot be exported. Build it with "
                            "ganrun.tasks.options.build_net from plain arguments.")
        nets[name] = config
    config = {"ganrun_export": EXPORT_FORMAT, "ganrun_version": __version__,
              "kind": model.kind, "model": model.export_config(), "nets": nets,
              "data_shape": model.data_shape, "class_names": model.data_shape.get("class_names"),
              **info}
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_bytes(out / WEIGHTS, save(weights, metadata={"format": "pt"}))
    write_text(out / CONFIG, json.dumps(config, indent=2) + "\n")


def read_export(folder: Path, trust=()):
    """The inference object of an export folder with its weights loaded, and its config."""
    from ganrun.inference.model import Inference
    from ganrun.trust import check_data

    config = read_export_config(folder)
    weights = read_weights(folder / WEIGHTS)
    if config["ganrun_export"] == 1:
        config, weights = migrate_format_1(config, weights)
    source = f"Export '{folder}'"
    check_data(config, source, trust)  # the whole file, before anything named in it is imported
    from ganrun.data.shape import check_data_shape

    check_data_shape(config["data_shape"], source)
    try:
        from hydra.utils import get_object

        from ganrun.config import check_target_nodes

        check_target_nodes(config["nets"], "nets")
        nets = {name: build_exported_net(node) for name, node in config["nets"].items()}
        settings = {k: v for k, v in config["model"].items() if k != "_target_"}
        cls = get_object(config["model"]["_target_"])
        if not (isinstance(cls, type) and issubclass(cls, Inference)):
            raise UserError(f"`model._target_` ({config['model']['_target_']}) is not a ganrun "
                            "inference class")
        model = cls(nets, config["data_shape"], **settings)
    except UserError as err:
        raise UserError(f"{source}: {CONFIG} is not valid: {err}") from None
    except Exception as err:  # a network that cannot be built from these arguments
        raise UserError(f"{source}: the model in {CONFIG} cannot be built "
                        f"({type(err).__name__}: {' '.join(str(err).split())[:300]}). Export "
                        "the checkpoint again.") from None
    from ganrun.inference.loading import check_weights

    check_weights(weights, model.state_dict(), f"Export '{folder}'")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:400]
        raise UserError(f"Export '{folder}': {WEIGHTS} does not match the network that "
                        f"{CONFIG} describes ({detail}). The two files come from different "
                        "models: export the checkpoint again with `ganrun export`.") from None
    return model.eval(), config


def build_exported_net(node: dict) -> nn.Module:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    net = instantiate(OmegaConf.create(node))
    net.ganrun_config = node
    return net


def read_export_config(folder: Path) -> dict:
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
        raise UserError(f"'{folder}' is not a ganrun export: it lacks {' and '.join(missing)} "
                        f"(an export holds {CONFIG} and {WEIGHTS}). Give an export folder "
                        "written by `ganrun export`, or a .ckpt file.")
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UserError(f"Export '{folder}': {CONFIG} is not valid JSON ({err}). Export the "
                        "checkpoint again with `ganrun export`.") from None
    version = config.get("ganrun_export") if isinstance(config, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"Export '{folder}': {CONFIG} is not a ganrun export config (no "
                        "`ganrun_export` version). Export the checkpoint with `ganrun export`.")
    if version > EXPORT_FORMAT:
        raise UserError(f"Export '{folder}' was written by a newer ganrun (export format "
                        f"{version}; this ganrun reads {EXPORT_FORMAT} and older). Upgrade "
                        "ganrun.")
    needed = ((("generator", dict), ("generator_kwargs", dict), ("data_shape", dict))
              if version == 1 else (("model", dict), ("nets", dict), ("data_shape", dict)))
    for key, kind in needed:
        if not isinstance(config.get(key), kind):
            raise UserError(f"Export '{folder}': {CONFIG} has no valid `{key}`. Export the "
                            "checkpoint again with `ganrun export`.")
    return config


def migrate_format_1(config: dict, weights: dict) -> tuple[dict, dict]:
    """A format-1 export as format 2: the same networks and weights, renamed."""
    generator, kwargs = config["generator"], config["generator_kwargs"]
    new = {k: v for k, v in config.items() if k not in ("generator", "generator_kwargs")}
    if config.get("task") == "cyclegan":
        new["nets"] = {name: {**generator, **(kwargs.get(name) or {})}
                       for name in FORMAT_1_DIRECTIONS}
        new["model"] = {"_target_": FORMAT_1_TRANSLATOR}
        renamed = {f"nets.{key}": value for key, value in weights.items()}
    else:
        if not isinstance(config.get("latent_dim"), int):
            raise UserError(f"{CONFIG} has no valid `latent_dim`. Export the checkpoint again "
                            "with `ganrun export`.")
        new["nets"] = {"G": {**generator, **kwargs}}
        target = FORMAT_1_SAMPLERS.get(generator.get("_target_"),
                                       "ganrun.inference.model.Sampler")
        new["model"] = {"_target_": target, "latent_dim": config["latent_dim"],
                        "num_classes": int(kwargs.get("num_classes", 0) or 0)}
        renamed = {f"nets.G.{key}": value for key, value in weights.items()}
    new["ganrun_export"] = EXPORT_FORMAT
    return new, renamed


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"'{path}' cannot be read ({type(err).__name__}: {err}); it is "
                        "truncated or not a safetensors file. Export the checkpoint again "
                        "with `ganrun export`.") from None
