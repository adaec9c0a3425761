"""What every Hydra command of ganrun (train, eval) does before Hydra runs it."""

import logging
import sys
import warnings

from omegaconf import DictConfig, OmegaConf

from ganrun.errors import UserError
from ganrun.overrides import check_overrides


def quiet_library_noise() -> None:
    # Messages that say nothing about the run; everything else is left visible. The data
    # loader is resumable, through the data module's resume_at(), not Lightning's interface.
    for message in ("`broadcast_buffers` is deprecated", ".*LeafSpec.* is deprecated",
                    "You're resuming from a checkpoint that ended before the epoch ended",
                    # logger=csv keeps a resumed run's rows itself (ganrun.loggers.CSV)
                    "Experiment logs directory .* exists and is not empty"):
        warnings.filterwarnings("ignore", message=message)
    # Lightning's device lines (ganrun prints its own) and its stop line, which names
    # max_epochs after a signal or a max_steps stop (ganrun says what stopped the run).
    noise = ("litlogger", "GPU available:", "TPU available:", "`Trainer.fit` stopped")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not any(text in record.getMessage() for text in noise))


def print_help(args, config_name: str) -> None:
    """``--help``, as Hydra's template lays it out, without Hydra's listing of the config
    groups (which copies the whole config repository once per group: seconds): the groups
    and their options are read from the config folders themselves."""
    import string

    from hydra.core.hydra_config import HydraConfig

    from ganrun.overrides import compose

    cfg = compose(args.config_name or config_name, args.overrides, args.config_dir)
    HydraConfig.instance().set_config(cfg)
    groups = config_groups(args.config_dir)
    listing = lambda hydra: "".join(  # noqa: E731 (one expression, used twice)
        f"{group}: {', '.join(options)}\n" for group, options in groups.items()
        if group.startswith("hydra") == hydra)
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    print(string.Template(cfg.hydra.help.template).substitute(
        FLAGS_HELP="", HYDRA_CONFIG_GROUPS=listing(True), APP_CONFIG_GROUPS=listing(False),
        CONFIG=OmegaConf.to_yaml(job, resolve=args.resolve)))


def config_groups(user_dir: str | None) -> dict[str, list[str]]:
    """Every config group (a folder of YAML options, nested ones as ``a/b``) of ganrun's
    configs and of ``user_dir``, with its options."""
    from pathlib import Path

    from ganrun.config import config_dir

    found: dict[str, set[str]] = {}
    for root in [config_dir(), *([Path(user_dir)] if user_dir else [])]:
        for option in root.rglob("*.yaml"):
            group = option.parent.relative_to(root).as_posix()
            if group != ".":
                found.setdefault(group, set()).add(option.stem)
    return {group: sorted(found[group]) for group in sorted(found)}


def check_command_line(prog: str, args, config_name: str) -> DictConfig | None:
    """The composed config of the command line's (first) job, after ganrun's own checks of
    the overrides; exits 2 with one paragraph for a key the config does not have."""
    if args.help or args.hydra_help or args.shell_completion or args.info:
        return None
    try:
        cfg = check_overrides(prog, args.config_name or config_name, args.overrides,
                              args.config_dir)
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    if cfg is not None and "hydra" in cfg:
        allow_hydra_targets(cfg.hydra)
    return cfg


def composed_mode(cfg: DictConfig | None):
    """What ``run_hydra`` needs to know of a config ganrun composed (see there)."""
    from ganrun.private_apis import NOT_COMPOSED

    return NOT_COMPOSED if cfg is None or "hydra" not in cfg else cfg.hydra.mode


def allow_hydra_targets(hydra_cfg: DictConfig) -> None:
    """Hydra itself builds the callbacks, launcher and sweeper the user's composed config
    names: on hydra-core 1.4 they join the execution whitelist (``config.allow_building``)."""
    from ganrun.config import allow_building
    from ganrun.trust import target_nodes

    for node in target_nodes(OmegaConf.to_container(hydra_cfg, resolve=False)):
        allow_building(str(node["_target_"]))
