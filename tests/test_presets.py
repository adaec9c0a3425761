"""Each measured preset pinned: its composed recipe (every key that shapes training, resolved)
is the one in tests/presets/<preset>.yaml, so that an edit to a preset, or to a default it
inherits, cannot silently change a recipe whose numbers docs/zoo.md and the README report.

A deliberate change re-measures the preset (scripts/measure_presets.py) and then rewrites the
pins: `python tests/test_presets.py`.
"""

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from test_config import composed

PINS = Path(__file__).parent / "presets"
# The presets the zoo's tables report numbers for (docs/zoo.md, docs/text2image.md).
MEASURED = ["dcgan_fashion_mnist", "wgan_fashion_mnist", "wgan_gp_fashion_mnist",
            "sngan_fashion_mnist", "cgan_fashion_mnist", "best_fashion_mnist",
            "stylegan2_fashion_mnist", "text2image_fashion", "cyclegan_fashion_mnist",
            "pix2pix_fashion_mnist", "inpaint_fashion_mnist", "sr_fashion_mnist"]


# What makes the recipe; loggers, callbacks, metrics and paths are how a run is watched.
RECIPE = ("model", "loss", "dataset", "optimizer", "hardware", "trainer", "divergence", "task",
          "scheduler", "augment", "ema", "regularizers", "seed")


def pinned_text(preset: str, folder: Path) -> str:
    cfg = OmegaConf.to_container(composed(f"experiment={preset}", tmp_path=folder), resolve=True)
    return OmegaConf.to_yaml({key: cfg[key] for key in RECIPE})


@pytest.mark.parametrize("preset", MEASURED)
def test_each_measured_preset_composes_to_its_pinned_config(preset, tmp_path):
    expected = (PINS / f"{preset}.yaml").read_text()
    got = pinned_text(preset, tmp_path)
    assert got == expected, (
        f"experiment={preset} no longer composes to tests/presets/{preset}.yaml: re-measure it "
        f"(scripts/measure_presets.py), update docs/zoo.md, then `python tests/test_presets.py`")


def test_every_measured_preset_has_a_pin_and_no_pin_is_stale():
    assert sorted(p.stem for p in PINS.glob("*.yaml")) == sorted(MEASURED)


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as folder:
        for name in MEASURED:
            (PINS / f"{name}.yaml").write_text(pinned_text(name, Path(folder)))
            print("pinned", name)
