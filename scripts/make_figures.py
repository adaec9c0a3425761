"""Every picture in README.md and docs/, remade from run folders, checkpoints or exports.

    python scripts/make_figures.py --out docs/images \\
        dcgan_fashion=<run folder> text2image_fashion=<run folder> \\
        sr_fashion=<run folder> inpaint_fashion=<run folder> \\
        --study pruning_none=<study folder> --study pruning_halving=<study folder>

For each NAME=PATH the pictures follow from what the model declares (the commands it is made
with are `ganrun sample` and `ganrun translate`, so a picture equals what a user gets):
- a generator: NAME_samples.png (64 samples of seed 0; a conditional model: one column per
  class) and NAME_interpolation.png (4 strips of 8); with truncation and style mixing
  (StyleGAN2): NAME_truncation.png (rows of truncation 0.5, 0.7, 1.0) and NAME_mixing.png; with
  captions (text-to-image): NAME_captions.png, one row of 8 per caption of --captions;
- a translator: NAME_translation.png, rows of its first 8 test pairs' inputs, the model's
  baseline (bicubic, the fill) where it has one, outputs and targets; for an unpaired one
  (CycleGAN) test images of A, their translation to B, of B, and to A (--data-root: where the
  data set is, if not where the checkpoint says);
- a run folder that logged metrics/fid: a curve in fid_curves.png.
--study NAME=FOLDER (a `ganrun tune` study): NAME_trials.png, FID over iterations of every
trial, pruned trials ending where they stopped. Pictures are small PNGs (a few hundred kB in all).
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CAPTIONS = ["a dark plain ankle boot", "a light small sneaker", "a dark patterned bag",
            "a light large coat", "a plain light trouser", "a dark small sandal"]
TRUNCATIONS = (0.5, 0.7, 1.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="NAME=PATH: a run folder, checkpoint or export")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--data-root", help="where the translators' data sets are (default: "
                        "the root each checkpoint names)")
    parser.add_argument("--study", action="append", default=[], help="NAME=FOLDER of ganrun tune")
    parser.add_argument("--captions", type=Path, help="a text file of captions, one a line")
    return parser.parse_args()


def pairs(items: list[str]) -> dict[str, Path]:
    parsed = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            sys.exit(f"make_figures: '{item}' is not NAME=PATH")
        parsed[name] = Path(path).expanduser()
    return parsed


def model_file(path: Path) -> Path:
    """A run folder's last.ckpt; a checkpoint or an export folder as it is."""
    last = path / "checkpoints" / "last.ckpt"
    return last if last.is_file() else path


def ganrun(*args) -> None:
    proc = subprocess.run([sys.executable, "-m", "ganrun", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"make_figures: ganrun {' '.join(map(str, args))} failed:\n{proc.stderr[-2000:]}")


def sample_grid(path: Path, out: Path, *keys: str) -> Image.Image:
    with tempfile.TemporaryDirectory() as tmp:
        ganrun("sample", f"ckpt={path}", f"out={tmp}", "format=grid", *keys)
        written = next(Path(tmp).glob("*.png"))
        image = Image.open(written).convert("RGB")
    image.save(out)
    return image


def stack(images: list[Image.Image], labels: list[str] | None = None) -> Image.Image:
    """Images one under the other, each with its label on its left when given."""
    margin = 0 if labels is None else 8 + max(ImageDraw.Draw(images[0]).textlength(t)
                                              for t in labels)
    width = int(margin) + max(i.width for i in images)
    canvas = Image.new("RGB", (width, sum(i.height for i in images)), "white")
    y = 0
    for k, image in enumerate(images):
        canvas.paste(image, (int(margin), y))
        if labels is not None:
            ImageDraw.Draw(canvas).text((4, y + image.height // 2 - 5), labels[k], fill="black")
        y += image.height
    return canvas


def sampler_figures(name: str, path: Path, model, out: Path, captions: list[str]) -> list[Path]:
    options = {f.name for f in __import__("dataclasses").fields(model.sampler.Options)}
    classes = model.sampler.num_classes
    made = [out / f"{name}_samples.png"]
    keys = [f"num={classes * 8}", f"nrow={classes}"] if classes else ["num=64"]
    if "text" in options:
        rows = [sample_grid(path, out / f"{name}_row.png", f"text={c}", "num=8", "nrow=8")
                for c in captions]
        (out / f"{name}_row.png").unlink()
        stack(rows, captions).save(out / f"{name}_captions.png")
        return [out / f"{name}_captions.png"]
    sample_grid(path, made[0], "seed=0", *keys)
    made.append(out / f"{name}_interpolation.png")
    sample_grid(path, made[-1], "interpolate=true", "num=4", "steps=8", "seed=0")
    if "mix" in options:
        rows = [sample_grid(path, out / f"{name}_row.png", f"truncation={t}", "num=8", "nrow=8")
                for t in TRUNCATIONS]
        (out / f"{name}_row.png").unlink()
        made.append(out / f"{name}_truncation.png")
        stack(rows, [f"truncation {t}" for t in TRUNCATIONS]).save(made[-1])
        made.append(out / f"{name}_mixing.png")
        sample_grid(path, made[-1], "mix=true", "num=4", "nrow=4", "seed=0")
    return made


def translator_figure(name: str, path: Path, loaded, data_root: str | None,
                      out: Path) -> Path | None:
    """Rows of the first 8 test pairs: input, the model's baseline (bicubic, the fill) where it
    has one, output and target, as the paired metrics see them."""
    import torch
    from hydra.utils import instantiate

    from ganrun.commands.eval import located
    from ganrun.commands.translate import translate_batch
    from ganrun.inference import imagefiles

    translator = loaded.model.translator
    data = instantiate(located(loaded.dataset, path, data_root))
    def translated(images, direction):
        with torch.no_grad():
            return translate_batch(translator, images.to(translator.device), direction).cpu()

    pairs = translator.test_pairs(data, 8)
    if pairs is None:  # unpaired (CycleGAN): the first test images of each domain, both ways
        test = data.with_split("test")
        test.setup()
        batch = test.dataset.fixed_items(8)
        rows = {"A": batch["A"], "A to B": translated(batch["A"], "AtoB"),
                "B": batch["B"], "B to A": translated(batch["B"], "BtoA")}
    else:
        inputs, targets = pairs
        rows = {"input": inputs[:, :translator.input_channels("AtoB")]}
        baseline = translator.baseline(inputs)
        if baseline is not None:
            rows[baseline[0]] = baseline[1]
        rows["output"] = translated(inputs, "AtoB")
        rows["target"] = targets
    size = max(t.shape[-1] for t in rows.values())
    size *= max(1, 64 // size)  # small images drawn larger, pixel for pixel
    images = []
    for batch in rows.values():
        pixels = imagefiles.to_uint8(torch.nn.functional.interpolate(
            batch.float(), size=(size, size), mode="nearest"))
        pixels = pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels
        strip = torch.cat(list(pixels), dim=2).permute(1, 2, 0).numpy()
        images.append(Image.fromarray(np.ascontiguousarray(strip)))
    figure = out / f"{name}_translation.png"
    stack(images, list(rows)).save(figure)
    return figure


def fid_curves(runs: dict[str, Path], out: Path, name: str = "fid_curves.png",
               title: str = "FID over training") -> Path | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganrun.commands.report import scalars
    from ganrun.runner import jobstatus

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, run in runs.items():
        points = scalars(run).get("metrics/fid", []) if run.is_dir() else []
        if points:
            pruned = jobstatus.read(run).get("status") == "pruned"
            ax.plot(*zip(*points), marker="x" if pruned else ".",
                    linestyle=":" if pruned else "-", label=label + (" (pruned)" if pruned else ""))
    if not ax.lines:
        plt.close(fig)
        return None
    ax.set(xlabel="iteration", ylabel="FID", title=title, yscale="log")
    ax.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    fig.savefig(out / name, dpi=80)
    plt.close(fig)
    return out / name


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from ganrun.inference.loading import load

    captions = args.captions.read_text().splitlines() if args.captions else CAPTIONS
    made, runs = [], {}
    for name, path in pairs(args.models).items():
        loaded = load(model_file(path), "cpu")
        if loaded.model.sampler is not None:
            made += sampler_figures(name, model_file(path), loaded.model, args.out, captions)
        if loaded.model.translator is not None:
            made.append(translator_figure(name, model_file(path), loaded, args.data_root,
                                          args.out))
        runs[name] = path
    made.append(fid_curves(runs, args.out))
    for name, folder in pairs(args.study).items():
        trials = {p.name: p for p in sorted(folder.glob("trial_*"),
                                             key=lambda p: int(p.name.split("_")[1]))}
        made.append(fid_curves(trials, args.out, f"{name}_trials.png", f"FID of the trials: {name}"))
    for path in filter(None, made):
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: "
              f"{path.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
