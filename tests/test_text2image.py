"""Text-to-image: captioned data (a user's imagefolder layout, the offline fashion_captions),
sampling from text, the vocabulary as data, the metric. The task contract (resume, bf16, DDP,
export, eval) runs it in tests/test_task_contract*.py."""

import json

import pytest
import torch
from PIL import Image

from badinput import run_cli
from conftest import image_steps
from fakedata import write_caption_folder
from ganrun.data.captions import (ATTRIBUTES, HELD_OUT, NOUNS, SYNONYMS, CaptionFolder,
                                  FashionCaptions, build_vocabulary, encode)

TINY = ["task=text2image", "model=text2image", "dataset=caption_folder", "debug=tiny",
        "dataset.image_size=16", "dataset.batch_size=4", "trainer.max_steps=2", "seed=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2i")
    write_caption_folder(root / "captions", split_folders=True)
    result = run_cli("train", *TINY, f"dataset.root={root / 'captions'}",
                     f"hydra.run.dir={root / 'run'}", cwd=root)
    assert result.code == 0, result.stderr[-3000:]
    return root / "run"


def test_a_caption_folder_gives_one_item_per_caption(tmp_path):
    write_caption_folder(tmp_path, n=10)
    data = CaptionFolder(root=str(tmp_path), image_size=16, batch_size=4)
    data.setup()
    assert len(data.dataset) == 12  # images 0 and 5 have two captions each
    batch = data.dataset.__getitems__([0, 1])
    assert batch["image"].shape == (2, 3, 16, 16) and batch["tokens"].shape[0] == 2
    assert data.vocabulary[:2] == ["<pad>", "<unk>"] and "square" in data.vocabulary


def test_words_outside_the_vocabulary_are_named():
    vocabulary = build_vocabulary(["a dark square"])
    tokens, lengths, unknown = encode(["a shiny square", "dark"], vocabulary)
    assert unknown == ["shiny"] and lengths.tolist() == [3, 1]
    assert tokens[0, 1].item() == 1  # <unk>


def test_fashion_captions_state_the_measured_attributes_and_hold_combinations_out(fashion_root):
    data = FashionCaptions(root=str(fashion_root), download=False)
    _, train_labels, train_captions, train_held, train_values = data.rows("train")
    _, test_labels, test_captions, test_held, test_values = data.rows("test")
    assert not any(train_held) and sum(test_held) > 300
    synonyms = {word: value for value, words in SYNONYMS.items() for word in words}
    for i in range(0, len(test_captions), 997):  # each caption says the class and attributes
        caption, label = test_captions[i], test_labels[i]
        assert NOUNS[label] in caption
        said = {synonyms[w] for w in caption.replace(",", " ").replace(":", " ").split()
                if w in synonyms}
        for name, values in ATTRIBUTES.items():
            assert values[int(test_values[name][i])] in said, (caption, name)
    for label, value in HELD_OUT:  # never in training, present in the test split
        name = next(n for n, values in ATTRIBUTES.items() if value in values)
        code = ATTRIBUTES[name].index(value)
        assert not any(l == label and int(v) == code
                       for l, v in zip(train_labels, train_values[name]))
        assert any(l == label and int(v) == code
                   for l, v in zip(test_labels, test_values[name]))
    assert len(set(train_captions)) > 1000  # varied wording


def test_samples_from_text_with_named_files_and_a_warning(trained, tmp_path):
    ckpt = trained / "checkpoints" / "last.ckpt"
    result = run_cli("sample", f"ckpt={ckpt}", 'text=a shiny dark square', "num=3", "out=one",
                     cwd=tmp_path)
    assert result.code == 0, result.stderr[-2000:]
    assert "Words this model never saw, read as unknown: shiny" in result.stderr
    rows = (tmp_path / "one" / "captions.csv").read_text().splitlines()
    assert rows[0] == "file,text" and rows[1] == "sample_000000.png,a shiny dark square"
    (tmp_path / "captions.txt").write_text("a dark bar\n\na bright square\n")
    result = run_cli("sample", f"ckpt={ckpt}", "texts=captions.txt", "out=many", cwd=tmp_path)
    assert result.code == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "many").glob("*.png")) == \
        ["0000_a_dark_bar.png", "0001_a_bright_square.png"]
    result = run_cli("sample", f"ckpt={ckpt}", "text=a dark bar", "text_b=a bright bar",
                     "interpolate=true", "num=2", "steps=3", "out=walk", cwd=tmp_path)
    assert result.code == 0 and (tmp_path / "walk" / "interpolation.png").is_file()
    assert Image.open(tmp_path / "walk" / "interpolation.png").size == (2 + 3 * 18, 2 + 2 * 18)


def test_text_makes_the_difference_and_the_api_takes_it(trained, tmp_path):
    from ganrun import generate_images, load_generator

    run_cli("export", f"ckpt={trained / 'checkpoints' / 'last.ckpt'}", "out=export", cwd=tmp_path)
    G = load_generator(tmp_path / "export")
    dark = generate_images(G, 2, seed=0, text="a dark square")
    assert not torch.equal(dark, generate_images(G, 2, seed=0, text="a bright bar"))
    same = generate_images(load_generator(trained / "checkpoints" / "last.ckpt"), 2, seed=0,
                           text="a dark square")
    assert torch.equal(dark, same)
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert "square" in config["data_shape"]["vocabulary"]  # the vocabulary, as data


def test_the_grid_writes_each_rows_caption(trained):
    assert image_steps(trained) == [1, 2]
    grid = Image.open(trained / "samples" / "step_0000002.png")
    assert grid.size[0] > grid.size[1] * 2  # a caption column before the images


def test_eval_of_a_text_model_with_the_default_metrics(trained, tmp_path, with_torch_home):
    """The default FID works on a caption data set's batches (dicts, not (images, labels))."""
    result = run_cli("eval", f"ckpt={trained / 'checkpoints' / 'last.ckpt'}", "num_samples=8",
                     "metrics.real_samples=8", cwd=tmp_path)
    assert result.code == 0, result.text[-3000:]
    assert "fid" in json.loads(result.stdout.strip().splitlines()[-1])


def test_the_text_encoder_batches_have_their_own_progress(tmp_path):
    root = tmp_path
    write_caption_folder(root / "captions", split_folders=True)
    args = [a for a in TINY if not a.startswith("task.encoder_batches")]
    result = run_cli("train", *args, "task.encoder_batches=6", f"dataset.root={root / 'captions'}",
                     f"hydra.run.dir={root / 'run'}", cwd=root)
    assert result.code == 0, result.text[-2000:]
    assert "The first 6 batches are Text encoder (task.encoder_batches); trainer.max_steps " \
           "counts the iterations after them." in result.text
    assert "Text encoder (task.encoder_batches): 6/6 batch (100%)" in result.text


class CaptionList:
    def __init__(self, captions: list[str]):
        self.captions = captions

    def __len__(self):
        return len(self.captions)


class OneHotEncoders:
    """A sampler whose text encoder maps caption i to the unit vector e_i, and whose image
    encoder is given per test: R-precision is then known by hand."""

    def __init__(self, captions: list[str], image_vectors: torch.Tensor):
        self.index = {caption: i for i, caption in enumerate(captions)}
        self.eye, self.image_vectors = torch.eye(len(captions)), image_vectors

    def embed(self, captions):
        return self.eye[[self.index[c] for c in captions]]

    def image_features(self, images):
        return self.image_vectors[images[:, 0, 0, 0].long()]  # pixel (0,0,0) holds the index


@pytest.mark.parametrize("matching, expected", [("all", 1.0), ("none", 0.0), ("even", 0.5)])
def test_r_precision_equals_the_hand_counted_share(matching, expected):
    from ganrun.metrics.text_match import TextMatch

    n = 40
    captions = [f"caption {i}" for i in range(n)]
    own = torch.eye(n)
    if matching == "none":  # each image closest to another caption than its own
        vectors = own.roll(1, dims=0) - own
    elif matching == "even":
        vectors = torch.stack([own[i] if i % 2 == 0 else own[(i + 1) % n] - own[i]
                               for i in range(n)])
    else:
        vectors = own
    images = torch.arange(n, dtype=torch.float).view(n, 1, 1, 1).expand(n, 1, 2, 2)
    values = TextMatch(r_candidates=n, batch_size=7).r_precision(
        OneHotEncoders(captions, vectors), CaptionList(captions), captions, images, images)
    assert values == {"r_precision": expected, "r_precision_real": expected}
