"""The option each config group uses, as ``--help`` and ``--cfg job`` show it: a group left
at null (regularizer, ema, augment, conditioning, ...) is shown as off, which the config
itself shows only as an empty key."""

from hydra.core.hydra_config import HydraConfig

OFF = "none (off)"


def of_user(choices: dict) -> dict:
    """The groups a user picks: not Hydra's own, nor the ones the root config picks from
    others' choices (``debug/model@_global_: ${debug}_${model}``, which name their package)."""
    return {group: option for group, option in choices.items()
            if not group.startswith("hydra") and "@" not in group}


def describe(choices: dict) -> list[str]:
    """``group: option`` lines in the order of the root config's defaults list."""
    groups = list(reversed(list(of_user(choices))))
    width = max((len(g) for g in groups), default=0) + 1
    return [f"{group + ':':<{width}} {_option(choices[group])}" for group in groups]


def _option(option) -> str:
    # metrics=none is as off as ema=null
    return OFF if option is None or str(option) == "none" else str(option)


def header(choices: dict) -> str:
    """The choices as YAML comments, printed above ``--cfg job``'s config."""
    lines = describe(choices)
    return "\n".join(["# Options in use (change one with group=option; none (off): not used):",
                      *(f"#   {line}" for line in lines)])


def in_use() -> str:
    """The resolver ``${ganrun.choices:}`` of the help template: the run's choices."""
    return "\n".join(describe(dict(HydraConfig.get().runtime.choices)))
