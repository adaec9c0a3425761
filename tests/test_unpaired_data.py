"""Unpaired two-domain data: a written trainA/trainB/testA/testB folder and the offline
Fashion-MNIST domains."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from fakedata import write_png
from ganrun.data.mnist import FashionMNIST
from ganrun.data.unpaired import FashionDomains, UnpairedFolder
from ganrun.errors import UserError


def write_unpaired(root: Path, counts=None) -> Path:
    """PNGs of different sizes; each image's red level is its number, so it is identifiable."""
    counts = counts or {"trainA": 3, "trainB": 5, "testA": 2, "testB": 2}
    for folder, n in counts.items():
        for i in range(n):
            write_png(root / folder / f"{i}.png", (20 + 3 * i, 16 + 2 * i), (40 * i + 10, 100, 200))
    return root


def folder_data(root, **options) -> UnpairedFolder:
    options = {"load_size": 14, "crop_size": 12, "batch_size": 2, "num_workers": 0, **options}
    return UnpairedFolder(root=str(root), **options)


def epoch_batches(data, epoch=0) -> list[dict]:
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning does before each epoch
    return list(loader)


def test_folder_batches_have_both_domains_in_range(tmp_path):
    data = folder_data(write_unpaired(tmp_path), channels_b=1)
    batches = epoch_batches(data)
    assert len(data.dataset) == 5 and data.batches_per_epoch() == len(batches) == 2  # max(3, 5)
    assert set(batches[0]) == {"A", "B"}
    assert batches[0]["A"].shape == (2, 3, 12, 12) and batches[0]["B"].shape == (2, 1, 12, 12)
    assert all(-1 <= b[d].min() and b[d].max() <= 1 for b in batches for d in "AB")
    assert (data.channels_a, data.channels_b, data.image_size, data.num_classes) == (3, 1, 12, 0)


def test_folder_epoch_uses_every_a_image_and_random_b(tmp_path):
    data = folder_data(write_unpaired(tmp_path, {"trainA": 5, "trainB": 3}), batch_size=1,
                       flip=False, load_size=12)
    red_levels = [round((b["A"][0, 0, 0, 0].item() + 1) * 127.5) for b in epoch_batches(data)]
    assert sorted(red_levels) == [10, 50, 90, 130, 170]


def test_folder_augmentation_repeats_for_a_seed_and_changes_across_epochs(tmp_path):
    root = write_unpaired(tmp_path)
    for i in range(3):  # left half dark, right half bright: crops and flips are visible
        path = root / "trainA" / f"{i}.png"
        image = torch.zeros(3, 16, 20, dtype=torch.uint8)
        image[:, :, 10:] = 255
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
    torch.manual_seed(3)
    first = epoch_batches(folder_data(root))
    again = epoch_batches(folder_data(root))
    assert all(torch.equal(x[d], y[d]) for x, y in zip(first, again) for d in "AB")
    later = epoch_batches(folder_data(root), epoch=1)
    assert not all(torch.equal(x["A"], y["A"]) for x, y in zip(first, later))


def test_folder_test_split_resizes_to_crop_size_without_flip(tmp_path):
    data = folder_data(write_unpaired(tmp_path)).with_split("test")
    batch = epoch_batches(data)[0]
    assert batch["A"].shape == (2, 3, 12, 12)
    fixed = data.fixed_batch(3)
    assert fixed["A"].shape == (3, 3, 12, 12) and torch.equal(fixed["A"][0], fixed["A"][2])  # 2 images
    assert torch.equal(data.fixed_batch(3)["B"], fixed["B"])


def test_resume_continues_the_unpaired_order(tmp_path):
    root = write_unpaired(tmp_path, {"trainA": 4, "trainB": 7})
    torch.manual_seed(5)
    whole = epoch_batches(folder_data(root, batch_size=1))
    resumed = folder_data(root, batch_size=1)
    resumed.resume_at(epoch=0, batches=3)
    rest = epoch_batches(resumed)
    assert len(rest) == 4 and all(torch.equal(x[d], y[d]) for x, y in zip(whole[3:], rest) for d in "AB")
    ended = folder_data(root, batch_size=1)
    ended.resume_at(epoch=0, batches=7)  # stopped on the epoch's last batch: the next one follows
    next_epoch = epoch_batches(folder_data(root, batch_size=1), epoch=1)
    assert all(torch.equal(x["A"], y["A"]) for x, y in zip(next_epoch, ended.train_dataloader()))


def test_missing_domain_folder_is_named(tmp_path):
    root = write_unpaired(tmp_path, {"trainA": 2})
    with pytest.raises(UserError, match=r"no trainB folder .*trainA/, trainB/, testA/ and testB/"):
        folder_data(root).setup()


def test_empty_domain_folder_is_named(tmp_path):
    root = write_unpaired(tmp_path, {"trainA": 2})
    (root / "trainB").mkdir()
    (root / "trainB" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=r"trainB holds no images"):
        folder_data(root).setup()


def test_crop_larger_than_load_size_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"crop_size=300 is larger than dataset.load_size=286"):
        UnpairedFolder(root=str(tmp_path), crop_size=300)
    with pytest.raises(UserError, match=r"channels_b must be one of 1, 3, got 2"):
        UnpairedFolder(root=str(tmp_path), channels_b=2)


def test_unreadable_image_is_named(tmp_path):
    root = write_unpaired(tmp_path, {"trainA": 1, "trainB": 1})
    (root / "trainB" / "0.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"trainB/0.png is not a readable image"):
        epoch_batches(folder_data(root, batch_size=1))


def test_dataset_configs_build(tmp_path):
    folder = instantiate(OmegaConf.load("conf/dataset/unpaired_folder.yaml"),
                         root=str(tmp_path), num_workers=0)
    assert isinstance(folder, UnpairedFolder) and folder.image_size == 256
    domains = instantiate(OmegaConf.load("conf/dataset/fashion_domains.yaml"), root=str(tmp_path))
    assert isinstance(domains, FashionDomains) and domains.channels_b == 3


def domains(root, **options) -> FashionDomains:
    return FashionDomains(root=str(root), download=False, **{"batch_size": 16, **options})


def test_fashion_domains_are_disjoint_halves(fashion_root):
    data = domains(fashion_root, transform="invert", image_size=28)
    data.setup()
    source = FashionMNIST(str(fashion_root), download=False).load_split()
    a, b = data.dataset.images["A"], data.dataset.images["B"]
    assert len(a) == len(b) == 30000 and (data.channels_a, data.channels_b) == (1, 1)
    assert torch.equal(a, source.images[0::2]) and torch.equal(255 - b, source.images[1::2])
    assert torch.equal(data.dataset.labels["A"], source.labels[0::2])
    assert torch.equal(data.dataset.labels["B"], source.labels[1::2])
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"A", "B", "label_A", "label_B"}
    assert batch["label_A"].dtype == torch.int64 and batch["A"].shape == (16, 1, 28, 28)
    assert data.num_classes == 10 and data.class_names[0] == "T-shirt/top"


@pytest.mark.parametrize("transform, channels", [("invert", 1), ("tint", 3), ("edges", 1)])
def test_fashion_domain_b_channels_per_transform(fashion_root, transform, channels):
    data = domains(fashion_root, transform=transform, image_size=32).with_split("test")
    data.setup()
    fixed = data.fixed_batch(4)
    assert data.channels_b == channels and fixed["B"].shape == (4, channels, 32, 32)
    assert fixed["A"].shape == (4, 1, 32, 32) and len(data.dataset) == 5000
    corner = fixed["B"][:, :, 0, 0]  # padded background under the change
    expected = {"invert": 1.0, "edges": -1.0}.get(transform)
    assert expected is None or (corner == expected).all()
    assert torch.equal(fixed["label_A"], data.dataset.labels["A"][:4])


def test_fashion_domains_resume_exactly(fashion_root):
    torch.manual_seed(7)
    options = {"batch_size": 256, "transform": "invert", "image_size": 28}
    whole = domains(fashion_root, **options).train_dataloader()
    first = [batch for _, batch in zip(range(5), whole)]
    resumed = domains(fashion_root, **options)
    resumed.resume_at(epoch=0, batches=3)
    rest = [batch for _, batch in zip(range(2), resumed.train_dataloader())]
    assert all(torch.equal(x[k], y[k]) for x, y in zip(first[3:], rest) for k in x)


def test_appearance_changes_on_a_step_image():
    from ganrun.data.appearance import edges, invert, tint

    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1
    outline = edges(step)[0, 0]
    assert (outline[:, 2:4] == 1).all() and (outline[:, :2] == 0).all() and (outline[:, 4:] == 0).all()
    assert torch.equal(invert(step), 1 - step)
    colours = tint(step)
    assert colours.shape == (1, 3, 6, 6) and not torch.equal(colours[:, 0], colours[:, 2])
