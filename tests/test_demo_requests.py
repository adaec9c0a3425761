"""Bad inputs, kind "demo requests": what a visitor of `ganrun demo` (or any client of its API)
may send. The page takes only what it shows: no path on the server, no batch over max_num, no
image over max_pixels (refused from the header, before decoding), strings from the model file
shown literally, errors escaped and one line in the terminal, inputs named after what they are.
The page is served in this process and driven through Gradio's own client, as a script would."""

import json
import logging
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from badinput import TINY_GEN, run_cli, shared  # noqa: F401 (fixture)
from fakedata import write_caption_folder
from test_text2image import TINY as TEXT_TINY

pytest.importorskip("gradio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``ganrun demo``'s page for ``ckpt``, served in this process until closed."""

    def __init__(self, ckpt: Path, **settings):
        from gradio_client import Client

        from ganrun.commands.demo import DemoConfig, build_page, require_gradio
        from ganrun.inference.loading import load

        self.cfg = DemoConfig(ckpt=str(ckpt), port=free_port(), **settings)
        gr = require_gradio()
        self.page = build_page(gr, load(self.cfg.ckpt, "cpu", []), self.cfg)
        self.page.queue().launch(server_name="127.0.0.1", server_port=self.cfg.port, quiet=True,
                                 prevent_thread_lock=True, ssr_mode=False,
                                 max_file_size=self.cfg.max_upload)
        self.client = Client(f"http://127.0.0.1:{self.cfg.port}", verbose=False)

    def inputs(self, endpoint: str) -> list[str]:
        info = self.client.view_api(return_format="dict", print_info=False)
        return [p["parameter_name"] for p in info["named_endpoints"][endpoint]["parameters"]]

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def models(shared, tmp_path_factory) -> dict[str, Path]:
    """Exports: a conditional DCGAN, an unconditional one, an inpainting model, a text model."""
    root = tmp_path_factory.mktemp("demo_models")
    runs = {"uncond": [*TINY_GEN, "dataset=mnist", f"dataset.root={shared.mnist}", "seed=0"]}
    write_caption_folder(root / "captions", split_folders=True)
    runs["text"] = [*TEXT_TINY, f"dataset.root={root / 'captions'}"]
    found = {"cgan": shared.gen_export}
    for name, args in runs.items():
        result = run_cli("train", *args, f"hydra.run.dir={root / name}", cwd=root)
        assert result.code == 0, result.stderr[-3000:]
        found[name] = root / name / "checkpoints" / "last.ckpt"
    found["inpaint"] = shared.inpaint_ckpt
    return found


@pytest.fixture
def served(request):
    pages = []

    def serve(ckpt, **settings):
        pages.append(Served(ckpt, **settings))
        return pages[-1]
    yield serve
    for page in pages:
        page.close()


def test_inputs_are_named_and_a_class_is_offered_only_by_class_models(models, served):
    cgan = served(models["cgan"]).inputs("/generate")
    assert cgan == ["seed", "images", "interpolate", "steps", "label", "truncation"]
    assert served(models["uncond"]).inputs("/generate") == \
        ["seed", "images", "interpolate", "steps", "truncation"]


def test_a_text_model_takes_captions_never_a_path_on_the_server(models, served, tmp_path):
    page = served(models["text"])
    assert "texts" not in page.inputs("/generate")  # texts=FILE is the command line's
    assert page.inputs("/generate")[-2:] == ["text", "text_b"]
    with pytest.raises(Exception, match="at most 1,000"):
        page.client.predict(seed=0, images=2, text="a dark square " * 100,
                            api_name="/generate")
    grid = page.client.predict(seed=0, images=2, text="a dark square", api_name="/generate")
    assert np.asarray(Image.open(grid)).shape[0] > 16


@pytest.mark.parametrize("num", [65, 2.5, -1, "1e9"])
def test_a_batch_the_page_does_not_offer_is_refused(models, served, num, caplog):
    page = served(models["uncond"], max_num=64)
    with caplog.at_level(logging.INFO, logger="ganrun"):
        with pytest.raises(Exception, match="images must be"):
            page.client.predict(seed=0, images=num, api_name="/generate")
    refused = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert len(refused) == 1 and "\n" not in refused[0].getMessage()


def test_an_error_echoing_markup_is_escaped(models, served):
    page = served(models["cgan"])
    with pytest.raises(Exception) as err:
        page.client.predict(seed=0, images=4, label="<img src=x onerror=alert(1)>",
                            api_name="/generate")
    assert "&lt;img" in str(err.value) and "<img" not in str(err.value)


def test_an_image_too_large_is_refused_before_it_is_decoded(models, served, tmp_path):
    from gradio_client import handle_file

    page = served(models["inpaint"], max_pixels=1000 * 1000)
    assert page.inputs("/translate") == ["image", "mask"]  # one direction: nothing to choose
    huge = tmp_path / "huge.png"
    Image.new("L", (6000, 6000)).save(huge)  # 36 million pixels in a few kB
    with pytest.raises(Exception, match="6000x6000 pixels, more than the 1,000,000"):
        page.client.predict(handle_file(str(huge)), None, api_name="/translate")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(small)
    translated, hole = page.client.predict(handle_file(str(small)), None,
                                           api_name="/translate")
    assert np.asarray(Image.open(translated)).shape[:2] == (28, 28)


def test_words_from_the_model_file_are_shown_as_text(models, served, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(models["cgan"], export)
    config = json.loads((export / "config.json").read_text())
    config["choices"]["dataset"] = "<img src=http://outside.example/x.png><form>"
    (export / "config.json").write_text(json.dumps(config))
    page = served(export)
    header = next(block for block in page.page.blocks.values()
                  if type(block).__name__ == "Markdown")
    assert "\\<img" in header.value and "\\<form\\>" in header.value


def test_uploads_live_in_a_private_folder_removed_when_the_demo_stops(models, tmp_path,
                                                                      monkeypatch):
    import ganrun.commands.demo as demo

    seen = {}

    class Page:
        def queue(self):
            return self

        def launch(self, **kwargs):  # what a visitor's upload leaves behind
            folder = Path(demo.os.environ["GRADIO_TEMP_DIR"])
            seen["folder"], seen["mode"] = folder, folder.stat().st_mode & 0o777
            (folder / "upload.png").write_bytes(b"x")

    monkeypatch.setattr(demo, "build_page", lambda gr, loaded, cfg: Page())
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    demo.demo(demo.DemoConfig(ckpt=str(models["cgan"])))
    assert seen["mode"] == 0o700 and str(seen["folder"]).startswith(str(tmp_path))
    assert not seen["folder"].exists()


def test_a_host_that_is_no_address_is_named(models):
    result = run_cli("demo", f"ckpt={models['cgan']}", "host=no-such-host.invalid",
                     cwd=models["cgan"].parent)
    assert result.code == 2 and "host=no-such-host.invalid is not an address" in result.text


def test_an_export_with_a_word_for_its_iteration_still_serves(models, served, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(models["cgan"], export)
    config = json.loads((export / "config.json").read_text())
    config["iteration"] = "many"
    (export / "config.json").write_text(json.dumps(config))
    page = served(export)
    assert page.client.predict(seed=0, images=2, api_name="/generate")
