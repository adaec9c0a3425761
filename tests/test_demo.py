"""`ganrun demo` in a real browser: Debian's Chromium (apt-get install chromium; .ci/run installs
it) driven by Playwright. The page of a generator gives, for a seed, the pixels `ganrun sample`
writes for that seed; the page of an inpainting model translates an uploaded image as
`ganrun translate` does."""

import io
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

import warm
from conftest import FASHION, run_ganrun, unavailable

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FASHION_TINY = ["dataset=fashion_mnist", f"dataset.root={FASHION}", "debug=tiny"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """A conditional DCGAN and an inpainting pix2pix, a few iterations on real Fashion-MNIST."""
    if not FASHION.is_dir():
        unavailable(f"{FASHION} is absent: apt-get install dataset-fashion-mnist")
    base = tmp_path_factory.mktemp("demo")
    runs = {
        "cgan": ["conditioning=embedding"],
        "inpaint": ["task=pix2pix", "model=pix2pix", "degrade=mask"],
    }
    for name, extra in runs.items():
        run_ganrun("train", *FASHION_TINY, *extra, f"hydra.run.dir={base / name}", cwd=base)
        run_ganrun("export", f"ckpt={base / name / 'checkpoints' / 'last.ckpt'}",
                   f"out={base / f'{name}_export'}", cwd=base)
    return {name: base / f"{name}_export" for name in runs}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        unavailable(f"{CHROMIUM} is absent: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """`ganrun demo` in a subprocess, serving on a free port until the block ends."""

    def __init__(self, export: Path, cwd: Path):
        self.port = free_port()
        self.proc = warm.popen(["-m", "ganrun", "demo", f"ckpt={export}", f"port={self.port}"],
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)

    def __enter__(self) -> str:
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stdout.read()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return url
            except OSError:
                time.sleep(0.5)
        raise AssertionError("ganrun demo did not start serving in 120 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)


TOAST = ".toast-body, [data-testid='toast-body']"


def shown(page, selector: str) -> np.ndarray:
    """The pixels of the picture the page shows in ``selector``, as RGB; a message the page shows
    instead (a toast) fails the test with its text, not a timeout."""
    page.locator(f"{selector} img, {TOAST}").first.wait_for(timeout=180_000)
    toast = page.locator(TOAST)
    assert toast.count() == 0, f"the page said: {toast.all_inner_texts()}"
    data = page.request.get(page.locator(f"{selector} img").get_attribute("src")).body()
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


def generated(page, url: str, seed: int, label: str | None = None) -> np.ndarray:
    """What a fresh page shows for ``seed`` (and ``label``): each picture from a page of its own,
    so that no wait depends on telling one picture from the one before."""
    page.goto(url, wait_until="networkidle")
    page.locator("#seed input").fill(str(seed))
    if label is not None:
        page.locator("#label input").click()
        page.get_by_role("option", name=label, exact=True).click()
        expect(page.locator("#label input")).to_have_value(label)
    expect(page.locator("#seed input")).to_have_value(str(seed))
    page.locator("#generate").click()
    return shown(page, "#output")


def written(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def test_the_generator_page_shows_what_ganrun_sample_writes(exports, browser, tmp_path):
    with Demo(exports["cgan"], tmp_path) as url:
        page = browser.new_page()
        first = generated(page, url, seed=7)
        assert "image generator" in page.locator("h2").first.inner_text()
        run_ganrun("sample", f"ckpt={exports['cgan']}", "num=16", "seed=7", "format=grid",
                   "out=seed7", cwd=tmp_path)
        assert np.array_equal(first, written(tmp_path / "seed7" / "grid.png"))

        # Another seed and one class: a new picture, again the command's.
        names = json.loads((exports["cgan"] / "config.json").read_text())["class_names"]
        second = generated(page, url, seed=8, label=names[3])
        run_ganrun("sample", f"ckpt={exports['cgan']}", "num=16", "seed=8", "label=3",
                   "format=grid", "out=seed8", cwd=tmp_path)
        assert not np.array_equal(first, second)
        assert np.array_equal(second, written(tmp_path / "seed8" / "grid.png"))

        # A bad value is one message on the page, and the page goes on working.
        page.locator("#truncation input, #truncation textarea").first.fill("-1")
        page.locator("#generate").click()
        assert "truncation" in page.locator(TOAST).first.inner_text(timeout=120_000)
        page.close()


def test_the_translator_page_translates_an_uploaded_image(exports, browser, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)) \
        .save(source / "digit.png")
    run_ganrun("translate", f"ckpt={exports['inpaint']}", f"in={source}", "out=out",
               cwd=tmp_path)
    with Demo(exports["inpaint"], tmp_path) as url:
        page = browser.new_page()
        page.goto(url, wait_until="networkidle")
        assert "paired translator" in page.locator("h2").first.inner_text()
        page.locator("#input_image input[type=file]").set_input_files(source / "digit.png")
        page.locator("#input_image img").wait_for(timeout=60_000)
        page.locator("#translate").click()
        assert np.array_equal(shown(page, "#translated"), written(tmp_path / "out" / "digit.png"))
        hole = shown(page, "#hole")  # the model's test mask: the centre box
        assert hole[14, 14].tolist() == [255, 255, 255] and hole[0, 0].tolist() == [0, 0, 0]
        page.close()


def test_the_sweep_report_page_opens_from_disk(browser, tmp_path):
    if not FASHION.is_dir():
        unavailable(f"{FASHION} is absent")
    run_ganrun("train", "-m", *FASHION_TINY, "hydra.sweep.dir=sweep", "loss=bce,hinge",
               cwd=tmp_path)
    run_ganrun("report", "sweep", cwd=tmp_path)
    page = browser.new_page()
    page.goto((tmp_path / "sweep" / "report.html").as_uri())
    assert page.locator("#jobs tbody tr").count() == 2
    assert {"loss=bce", "loss=hinge"} <= set(page.locator("#jobs tbody td").all_inner_texts())
    pictures = page.locator("img")
    assert pictures.count() == 3  # the curves, and each job's last sample grid
    for i in range(3):  # each one found and decoded from disk
        assert pictures.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    page.close()


def test_make_figures_draws_each_model_as_it_declares(exports, tmp_path):
    out = tmp_path / "figures"
    proc = warm.run(["scripts/make_figures.py", "--out", out, f"cgan={exports['cgan']}",
                     f"inpaint={exports['inpaint']}", "--data-root", FASHION],
                    cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {"cgan_samples.png", "cgan_interpolation.png",
                                               "inpaint_translation.png"}
    # The samples picture is ganrun sample's grid: one column per class.
    run_ganrun("sample", f"ckpt={exports['cgan']}", "num=80", "nrow=10", "seed=0",
               "format=grid", "out=g", cwd=tmp_path)
    assert np.array_equal(written(out / "cgan_samples.png"), written(tmp_path / "g" / "grid.png"))
    rows = written(out / "inpaint_translation.png")  # input, fill, output, target: 8 each
    assert rows.shape[0] == 4 * 56 and rows.shape[1] > 8 * 56  # 28-pixel images drawn at 56


def test_the_demo_without_gradio_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['gradio'] = None; sys.argv = ['ganrun', 'demo', "
            "'ckpt=model']; from ganrun.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'ganrun[demo]'" in proc.stderr and "Traceback" not in proc.stderr
