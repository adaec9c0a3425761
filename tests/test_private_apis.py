"""The private APIs of other libraries that ganrun uses (ganrun/private_apis.py) still exist in
the installed versions; CHECKED_WITH names the versions they were last checked against."""

import importlib.metadata

import pytest

from ganrun import private_apis


def test_every_private_api_still_exists():
    from hydra._internal import hydra as hydra_main, utils as hydra_utils
    from pytorch_lightning.strategies.launchers import subprocess_script
    from pytorch_lightning.trainer.connectors.signal_connector import _SignalConnector

    for module, names in ((hydra_utils, ("_run_hydra", "get_args_parser",
                                         "create_automatic_config_search_path")),
                          (hydra_main, ("Hydra",)),
                          (subprocess_script, ("_SubprocessScriptLauncher",))):
        for name in names:
            assert hasattr(module, name), (module.__name__, name)
    assert hasattr(hydra_main.Hydra, "create_main_hydra2")
    assert hasattr(hydra_main.Hydra, "get_mode")
    assert "received_sigterm" in _SignalConnector.__init__.__code__.co_names
    import torch

    assert isinstance(torch.amp.GradScaler("cpu")._scale, (torch.Tensor, type(None)))
    if torch.backends.mkldnn.is_available():
        assert private_apis.onednn_ops() is not None
    counters = private_apis.compile_counters()
    assert all(counters[g][k] >= 0 for g, k in (("stats", "unique_graphs"), ("frames", "total"),
                                                  ("inductor", "cudagraph_skips")))
    assert private_apis.compile_seconds() >= 0
    net = torch.nn.Linear(2, 2)
    net.compile(backend="eager")
    calls = []
    private_apis.wrap_compiled_call(net, lambda call: lambda *a: calls.append(1) or call(*a))
    net(torch.zeros(1, 2))
    assert calls == [1]


def test_the_installed_libraries_are_on_the_lines_the_private_apis_were_checked_with():
    """A user may run newer releases of a line (the test above is what checks them); a new major
    or minor line fails here, so that ganrun/private_apis.py is checked again and its record
    updated, instead of drifting unnoticed."""
    from packaging.version import Version

    def line(version: str) -> tuple[int, int]:
        return Version(version).release[:2]

    for name, checked in private_apis.CHECKED_WITH.items():
        installed = line(importlib.metadata.version(name))
        lines = {line(v) for v in checked.split(" and ")}
        assert installed in lines, (f"{name} {importlib.metadata.version(name)} is not on a line "
                                    f"ganrun/private_apis.py was checked with ({checked})")


def test_a_hydra_run_composes_through_the_private_path(tmp_path):
    from ganrun.config import config_dir

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text("defaults:\n  - dcgan\n  - _self_\n"
                                                 "latent_dim: 7\n")
    cfg = private_apis.compose_like_a_run(str(config_dir()), str(tmp_path), "train",
                                          ["model=mine"])
    assert cfg.model.latent_dim == 7 and cfg.hydra.runtime.choices.model == "mine"


@pytest.mark.parametrize("overrides, mode", [
    ([], None), (["hydra.mode=MULTIRUN"], "MULTIRUN"), (["hydra.mode=RUN"], "RUN"),
    (["seed=0,1"], None), (["model=mlp", "hydra.mode=MULTIRUN"], "MULTIRUN")])
def test_the_mode_ganrun_composed_is_the_one_hydra_would_compose(overrides, mode):
    """run_hydra hands Hydra 1.3 the mode of the config ganrun composed for its checks instead
    of letting Hydra compose the whole config again: the value Hydra's get_mode gives."""
    import hydra
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from ganrun.commands.hydra_app import check_command_line, composed_mode
    from ganrun.config import config_dir

    args = private_apis.hydra_args_parser().parse_args(overrides)
    mine = composed_mode(check_command_line("ganrun train", args, "train"))
    assert mine == (RunMode[mode] if mode else None)
    if hydra.__version__.startswith("1.3."):  # 1.4 reads the mode from the overrides itself
        search_path = create_automatic_config_search_path(None, None, str(config_dir()))
        main = Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
        try:
            assert main.get_mode("train", overrides) == mine
        finally:
            GlobalHydra.instance().clear()
