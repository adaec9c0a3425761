"""Every GPU figure of ganrun in one short call: the measurements scripts/gpu/run.sh runs after
its preflight (docs/performance.md, "Performance"). Written for a bare GPU machine that holds a
copy of the working tree, the carried folder of scripts/gpu/prepare.sh and nothing else.

The measurements run in order of importance, each skipped when the deadline (``--deadline-at``)
leaves it too little time, and ``results.json`` in ``--out`` is rewritten after every one of
them (and before, naming the one running), so a kill at any point leaves what finished. A run
that crashed the process is marked ``crashed`` by the next ``--resume``, which goes on with
the rest. A failed measurement's output goes to ``fail-<name>.log`` beside it (four at most,
then ``fail-more.log``: the device returns eight files).

- ``<preset>/plain_<precision>``: images/s of a hand-written PyTorch loop (scripts/bench_train.py;
  the same networks, optimizers, batch, update rule, fp32 math and data on the device);
- ``<preset>/<variant>``: images/s of `ganrun train` (eager fp32/bf16 in this process;
  trainer.compile and trainer.cuda_graphs each in a process of its own, with a timeout), timed
  between two iterations after a warm-up by bench_timer.Timer, with the run's
  acceleration.json: a variant that fell back is labelled ``fallback`` with the reason, never
  as the variant, and has no ratio;
- ``inception_rate``: the FID Inception's features/s on the device;
- ``lucic``: Lucic et al.'s protocol as a user runs it, alone on the device
  (experiment=dcgan_fashion_mnist: 20 epochs, then 10,000 samples and the 10,000 test images
  through the Inception), its generator exported to ``lucic_generator.tar`` for the FID to be
  computed where the real Inception weights are (see docs/performance.md);
- ``inception_check``: the device's Inception features of 2,048 test images against the CPU
  path's (PyTorch's default TF32 convolutions and full fp32): relative differences of their
  means and covariances, and the Frechet distance between the two.

The Inception's weights here are random (same architecture, same work): the real ones (87 MB)
do not fit the 64 MiB a call carries, so FID values measured on the device mean nothing and
are labelled so. ``--smoke`` runs everything with tiny sizes on any device (the CPU rehearsal,
scripts/gpu/rehearse.sh); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
SCRIPTS, ROOT = HERE.parent, HERE.parent.parent
sys.path[:0] = [str(ROOT), str(HERE), str(SCRIPTS)]  # ganrun from this tree, not an install

import torch  # noqa: E402


@dataclass
class Preset:
    batch: int
    warmup: int       # iterations before the timing (compilation, capture, autotuning)
    iterations: int   # timed iterations
    on_device: bool   # the data set held on the device (its loader has no on_device option)


PRESETS = {
    "dcgan_fashion_mnist": Preset(64, 30, 200, True),
    "stylegan2_fashion_mnist": Preset(32, 16, 64, True),  # 64: four cycles of lazy R1 (16)
    "cyclegan_fashion_mnist": Preset(8, 10, 100, False),
}
SMOKE = {  # tiny networks for --smoke
    "dcgan_fashion_mnist": ["model.latent_dim=8", "model.generator.width=8",
                            "model.discriminator.width=8"],
    "stylegan2_fashion_mnist": ["model.latent_dim=8", "model.generator.w_dim=8",
                                "model.generator.channel_base=64", "model.generator.channel_max=8",
                                "model.discriminator.channel_base=64",
                                "model.discriminator.channel_max=8",
                                "model.discriminator.mbstd_group=2", "dataset.image_size=16",
                                "task.g_reg_interval=2", "task.d_reg_interval=3"],
    "cyclegan_fashion_mnist": ["model.generator.width=4", "model.generator.n_blocks=1",
                               "model.discriminator.width=4", "model.discriminator.n_layers=1"],
}
VARIANTS = {  # ganrun's side: name -> (hardware, overrides, in a process of its own)
    "eager_fp32": ("gpu", [], False),
    "eager_bf16": ("[gpu,bf16]", [], False),
    "compile_fp32": ("gpu", ["trainer.compile=true"], True),
    "graphs_fp32": ("gpu", ["trainer.cuda_graphs=true"], True),
    "compile_bf16": ("[gpu,bf16]", ["trainer.compile=true"], True),
    "graphs_bf16": ("[gpu,bf16]", ["trainer.cuda_graphs=true"], True),
}
COMPILED = ("compile_", "graphs_")
CHECK_IMAGES = 2048  # the Inception check: enough for a full-rank 2048-d covariance
MAX_LOGS = 4  # then fail-more.log: with results.json, run.log and the tar, 8 files


@dataclass
class Item:
    name: str
    seconds: float   # at least what it needs on an H100 (skipped with less time left)
    run: Callable[[], dict]
    repeats: str | None = None  # an earlier item whose code path this one takes again


def plan(bench: "Bench") -> list[Item]:
    """The measurements, most important first, with what each needs at least (H100 guesses:
    start-up, data, warm-up and timing; compilation for the compiled variants)."""
    items = []
    pairs = [("dcgan_fashion_mnist", "fp32", 8), ("dcgan_fashion_mnist", "bf16", 8),
             ("stylegan2_fashion_mnist", "fp32", 12), ("cyclegan_fashion_mnist", "fp32", 10)]
    for preset, precision, seconds in pairs:
        items.append(Item(f"{preset}/plain_{precision}", seconds / 2,
                          lambda p=preset, q=precision: bench.plain(p, q)))
        items.append(Item(f"{preset}/eager_{precision}", seconds,
                          lambda p=preset, v=f"eager_{precision}": bench.ganrun(p, v)))
    items += [Item("inception_rate", 10, bench.inception_rate),
              Item("lucic", 100, bench.lucic),
              Item("dcgan_fashion_mnist/compile_fp32", 45,
                   lambda: bench.ganrun("dcgan_fashion_mnist", "compile_fp32")),
              Item("dcgan_fashion_mnist/graphs_fp32", 35,
                   lambda: bench.ganrun("dcgan_fashion_mnist", "graphs_fp32")),
              Item("inception_check", 45, bench.inception_check)]
    # Then, while time is left, the same code paths in other precisions.
    for preset, seconds in (("stylegan2_fashion_mnist", 12), ("cyclegan_fashion_mnist", 10)):
        items.append(Item(f"{preset}/plain_bf16", seconds / 2,
                          lambda p=preset: bench.plain(p, "bf16"), f"{preset}/plain_fp32"))
        items.append(Item(f"{preset}/eager_bf16", seconds,
                          lambda p=preset: bench.ganrun(p, "eager_bf16"),
                          "dcgan_fashion_mnist/eager_bf16"))
    for variant in ("compile_bf16", "graphs_bf16"):
        items.append(Item(f"dcgan_fashion_mnist/{variant}", 40,
                          lambda v=variant: bench.ganrun("dcgan_fashion_mnist", v),
                          f"dcgan_fashion_mnist/{variant.replace('bf16', 'fp32')}"))
    return items


# ---- the record ------------------------------------------------------------------------------

class Report:
    """results.json: written whole (a temporary file renamed over it) after every change."""

    def __init__(self, out: Path, resume: bool, header: dict):
        self.path = out / "results.json"
        self.out = out
        previous = json.loads(self.path.read_text()) if resume and self.path.is_file() else {}
        self.data = previous or {**header, "results": {}, "failure_logs": []}
        self.data["attempts"] = self.data.get("attempts", 0) + 1
        crashed = self.data.pop("running", None)
        if crashed:  # the process died inside it (a kill by the deadline, a crash)
            self.data["results"][crashed] = {"status": "crashed",
                                             "reason": "the process died during it"}
        self.save()

    def done(self, name: str) -> bool:
        return name in self.data["results"]

    def running(self, name: str) -> None:
        self.data["running"] = name
        self.save()

    def finish(self, name: str, result: dict) -> None:
        self.data.pop("running", None)
        self.data["results"][name] = result
        self.data["summary"] = summary(self.data["results"])
        self.save()

    def failure_log(self, name: str, text: str) -> str:
        logs = self.data["failure_logs"]
        slug = name.replace("/", "-")
        file = f"fail-{slug}.log" if len(logs) < MAX_LOGS else "fail-more.log"
        with open(self.out / file, "a") as f:
            f.write(f"==== {name}\n{text[-200_000:]}\n")
        logs.append(file)
        return file

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.time() - self.data["started_at"], 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def summary(results: dict) -> dict:
    """The ratios the targets read: ganrun / plain for each preset and precision, compiled
    variants against the plain eager fp32 loop (only where the variant really ran)."""
    def rate(name):
        r = results.get(name, {})
        return r.get("images_per_s") if r.get("status") == "ok" else None

    out = {}
    for preset in PRESETS:
        ratios = {}
        for precision in ("fp32", "bf16"):
            plain, eager = rate(f"{preset}/plain_{precision}"), rate(f"{preset}/eager_{precision}")
            if plain and eager:
                ratios[f"eager_vs_plain_{precision}"] = round(eager / plain, 3)
        plain = rate(f"{preset}/plain_fp32")
        for variant in VARIANTS:
            value = rate(f"{preset}/{variant}")
            if variant.startswith(COMPILED) and plain and value:
                ratios[f"{variant}_vs_plain_fp32"] = round(value / plain, 3)
        if ratios:
            out[preset] = ratios
    lucic = results.get("lucic", {})
    if lucic.get("status") == "ok":
        out["lucic_total_s"] = lucic["total_s"]
    if results.get("inception_rate", {}).get("status") == "ok":
        out["inception_features_per_s"] = results["inception_rate"]["features_per_s"]
    return out


# ---- ganrun commands -------------------------------------------------------------------------

def ganrun_here(*args: str) -> tuple[int, str]:
    """``ganrun ARGS`` in this process (no start-up of its own), its output captured."""
    from hydra.core.global_hydra import GlobalHydra

    from ganrun.cli import main

    saved_argv, root = sys.argv, logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []
    output, code = io.StringIO(), 0
    sys.argv = ["ganrun", *args]
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                code = 1
                output.write(traceback.format_exc())
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            with contextlib.suppress(Exception):
                handler.close()
        root.handlers, root.level = saved_handlers, saved_level
        sys.argv = saved_argv
    return code, output.getvalue()


def ganrun_process(args: list[str], timeout: float) -> tuple[int, str, float]:
    """``python -m ganrun ARGS`` in a process of its own; (code, output, wall seconds)."""
    start = time.perf_counter()
    # The tree (ganrun) and this folder (bench_timer) first, whatever the caller's path.
    path = os.pathsep.join([str(ROOT), str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        done = subprocess.run([sys.executable, "-m", "ganrun", *args], capture_output=True,
                              text=True, timeout=max(timeout, 1),
                              env={**os.environ, "PYTHONPATH": path})
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        code = "timeout"
        output = (out.decode(errors="replace") if isinstance(out, bytes) else out) + \
            f"\n[killed after {timeout:.0f} s: the deadline]"
    return code, output, time.perf_counter() - start


class Failed(Exception):
    def __init__(self, reason: str, output: str = ""):
        super().__init__(reason)
        self.reason, self.output = reason, output


# ---- the measurements ------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args, self.smoke = args, args.smoke
        self.cuda = torch.cuda.is_available() and not args.cpu
        self.device = "cuda" if self.cuda else "cpu"
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.deadline = args.deadline_at
        self.weights = None  # what the FID Inception's weights are, once looked at

    def left(self) -> float:
        return self.deadline - time.time()

    def hardware(self, name: str) -> str:
        return name if self.cuda else name.replace("gpu", "cpu")

    def overrides(self, preset: str) -> list[str]:
        data = [f"dataset.root={self.args.data}", "dataset.download=false"]
        if PRESETS[preset].on_device:
            data.append(f"dataset.on_device={str(self.cuda).lower()}")
        size = SMOKE[preset] + ["dataset.batch_size=8"] if self.smoke else \
            [f"dataset.batch_size={PRESETS[preset].batch}"]
        return [f"experiment={preset}", *data, *size]

    def lengths(self, preset: str) -> tuple[int, int]:
        p = PRESETS[preset]
        return (1, 3) if self.smoke else (p.warmup, p.iterations)

    # The plain loop.

    def plain(self, preset: str, precision: str) -> dict:
        from hydra import compose, initialize_config_dir

        from bench_train import plain_loop, plain_loop_stylegan2
        from ganrun.config import config_dir
        from ganrun.runner.acceleration import set_fp32_math

        warmup, iterations = self.lengths(preset)
        names = [o for o in self.overrides(preset) if not o.startswith("dataset.on_device")]
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = compose("train", overrides=names)
        math = set_fp32_math(tf32=False, cudnn_benchmark=True)  # ganrun's defaults
        loop_args = argparse.Namespace(device=self.device, batch_size=cfg.dataset.batch_size,
                                       iterations=iterations, precision=precision)
        if preset == "cyclegan_fashion_mnist":
            rate = plain_loop_cyclegan(loop_args, cfg, warmup)
        else:
            from ganrun.data import FashionMNIST

            data = FashionMNIST(root=self.args.data, download=False)
            data.setup()
            images = data.dataset.images.to(self.device)  # on the device, as ganrun's
            loop = plain_loop_stylegan2 if preset.startswith("stylegan2") else plain_loop
            rate = loop(loop_args, cfg, images, warmup=warmup)
        return {"status": "ok", "images_per_s": rate, "warmup": warmup,
                "iterations": iterations, "math": math}

    # ganrun.

    def ganrun(self, preset: str, variant: str) -> dict:
        hardware, extra, own_process = VARIANTS[variant]
        if self.smoke and variant.startswith(COMPILED):
            extra = [*extra, "trainer.compile_backend=aot_eager"]  # inductor's C++ build: minutes
        warmup, iterations = self.lengths(preset)
        folder = self.work / preset / variant
        out = folder / "timer.json"
        args = ["train", *self.overrides(preset), f"hardware={self.hardware(hardware)}", *extra,
                f"trainer.max_steps={warmup + iterations}", "seed=0", f"hydra.run.dir={folder}",
                "callbacks.samples.every_n_iterations=0", "~callbacks.hparams",
                "+callbacks.timer._target_=bench_timer.Timer", f"+callbacks.timer.out={out}",
                f"+callbacks.timer.start={warmup}",
                f"+callbacks.timer.stop={warmup + iterations}"]
        if own_process:
            code, output, _ = ganrun_process(args, self.left() - 5)
        else:
            code, output = ganrun_here(*args)
        if code != 0 or not out.is_file():
            raise Failed(f"ganrun train exited {code}", output)
        record = json.loads((folder / "acceleration.json").read_text())
        result = {**json.loads(out.read_text()), "warmup": warmup, "iterations": iterations,
                  "acceleration": record, "status": "ok"}
        wanted = "cuda_graphs" if variant.startswith("graphs_") else \
            "compiled" if variant.startswith("compile_") else None
        if wanted and not record[wanted]:
            # Trained, but not as the variant says: never labelled as the variant.
            result.update(status="fallback", reason=record["fallback"] or f"no {wanted}")
        return result

    # The FID Inception.

    def random_inception(self) -> Path:
        """The FID Inception's weights file with random weights, where torch-fidelity looks
        (TORCH_HOME): the network, its work and its speed are the real one's."""
        from ganrun.metrics.weights import fidelity_skeleton, weights_path

        path = weights_path()
        if self.weights is None:
            self.weights = f"found in {path} (not replaced)"
        if not path.is_file():
            self.weights = "random (the FID network's architecture and work, not its weights)"
            torch.manual_seed(2015)
            net = fidelity_skeleton()
            for module in net.modules():
                if isinstance(module, torch.nn.Conv2d):  # features of a sensible scale
                    torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), path)
        return path

    def test_images(self, n: int) -> torch.Tensor:
        from ganrun.data import FashionMNIST
        from ganrun.data.base import to_unit_range
        from ganrun.metrics.inception import to_uint8

        data = FashionMNIST(root=self.args.data, download=False, split="test")
        data.setup()
        return to_uint8(to_unit_range(data.dataset.images[:n]))

    def inception_rate(self) -> dict:
        from ganrun.metrics.inception import InceptionFeatures

        self.random_inception()
        n, batch = (2, 2) if self.smoke else (CHECK_IMAGES, 256)
        images = self.test_images(n).to(self.device)
        net = InceptionFeatures().to(self.device)
        if self.cuda:
            net(images[:batch])  # warm-up: cuDNN's algorithm choice
        self.sync()
        start = time.perf_counter()
        for part in images.split(batch):
            net(part)
        self.sync()
        seconds = time.perf_counter() - start
        return {"status": "ok", "features_per_s": n / seconds, "images": n, "batch": batch,
                "weights": self.weights,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32}

    def inception_check(self) -> dict:
        """Device features against the CPU path's on the same images: relative differences
        of the means and covariances, and the Frechet distance between the two."""
        from ganrun.metrics.inception import InceptionFeatures

        self.random_inception()
        n = 4 if self.smoke else CHECK_IMAGES
        images = self.test_images(n)
        device = {}
        passes = (("tf32_default", True), ("fp32", False)) if self.cuda else (("cpu", False),)
        for name, tf32 in passes:
            # PyTorch's default lets cuDNN run fp32 convolutions in TF32: what `ganrun eval`
            # gets on a GPU; then full fp32.
            torch.backends.cudnn.allow_tf32 = tf32
            net = InceptionFeatures().to(self.device)
            device[name] = torch.cat([net(part.to(self.device)).pool
                                      for part in images.split(256)]).double()
        torch.backends.cudnn.allow_tf32 = False
        # Every core for the reference pass, unless OMP_NUM_THREADS says how many: more threads
        # than the cores left free make LAPACK's eigensolvers many times slower, not faster.
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
        # On a CPU the device path is the CPU path: the reference is then torchmetrics'
        # network as built (unfolded), so that the comparison compares two computations.
        reference = InceptionFeatures(fast=self.cuda).to("cpu")
        start = time.perf_counter()
        cpu = torch.cat([reference(part).pool for part in images.split(64)]).double()
        result = {"status": "ok", "images": n, "weights": self.weights,
                  "cpu_reference": "ganrun's CPU path" if self.cuda else
                  "torchmetrics' unfolded network (a CPU run)",
                  "cpu_s": round(time.perf_counter() - start, 2)}
        for name, features in device.items():
            result[name] = compare(features, cpu)
        return result

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    # Lucic et al.'s protocol.

    def lucic(self) -> dict:
        self.random_inception()
        run = self.work / "lucic"
        train = ["train", "experiment=dcgan_fashion_mnist", f"dataset.root={self.args.data}",
                 "dataset.download=false", f"hardware={self.hardware('gpu')}",
                 f"dataset.on_device={str(self.cuda).lower()}", f"hydra.run.dir={run}", "seed=0"]
        evaluate = ["eval", f"ckpt={run}/checkpoints/last.ckpt", "metrics=fid",
                    f"device={self.device}", f"data_root={self.args.data}"]
        if self.smoke:
            train += [*SMOKE["dcgan_fashion_mnist"], "dataset.batch_size=8",
                      "trainer.max_epochs=1", "trainer.max_steps=2"]
            evaluate += ["num_samples=2", "metrics.real_samples=2"]
        else:
            evaluate += ["num_samples=10000"]
        code, output, train_s = ganrun_process(train, self.left() - 5)
        if code != 0:
            raise Failed(f"ganrun train exited {code}", output)
        code, output, eval_s = ganrun_process(evaluate, self.left() - 5)
        if code != 0:
            raise Failed(f"ganrun eval exited {code}", output)
        values = [line for line in output.strip().splitlines() if line.startswith("{")]
        fid = json.loads(values[-1]).get("fid") if values else None
        result = {"status": "ok", "train_s": round(train_s, 2), "eval_s": round(eval_s, 2),
                  "total_s": round(train_s + eval_s, 2), "fid_on_the_device": fid,
                  "inception_weights": self.weights,
                  "acceleration": json.loads((run / "acceleration.json").read_text())}
        code, output = ganrun_here("export", f"ckpt={run}/checkpoints/last.ckpt",
                                   f"out={run / 'export'}", "overwrite=true")
        if code == 0:
            with tarfile.open(self.args.out / "lucic_generator.tar", "w") as tar:
                tar.add(run / "export", arcname="lucic_generator")
            result["export"] = "lucic_generator.tar"
        else:
            result["export_failed"] = output[-2000:]
        return result


def compare(device: torch.Tensor, cpu: torch.Tensor) -> dict:
    """Two sets of features (float64) of the same images, as FID sees them."""
    mu_d, mu_c = device.mean(0), cpu.mean(0)
    cov_d, cov_c = torch.cov(device.T), torch.cov(cpu.T)
    # tr sqrt(cov_d cov_c) = tr sqrt(R cov_c R) with R = cov_d^(1/2): two symmetric
    # eigendecompositions, seconds where scipy's sqrtm takes tens of them at 2048-d.
    values, vectors = torch.linalg.eigh(cov_d)
    root = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root @ cov_c @ root).clamp(min=0).sqrt().sum()
    frechet = float((mu_d - mu_c).square().sum() + cov_d.trace() + cov_c.trace() - 2 * cross)
    return {"mean_relative_difference": float((mu_d - mu_c).norm() / mu_c.norm()),
            "covariance_relative_difference": float((cov_d - cov_c).norm() / cov_c.norm()),
            "max_feature_difference": float((device - cpu).abs().max()),
            "frechet_distance": frechet}


def plain_loop_cyclegan(args, cfg, warmup: int) -> float:
    """The reference's CycleGAN step (junyanz/pytorch-CycleGAN-and-pix2pix): both generators,
    then both discriminators on pooled fakes, LSGAN, L1 cycle terms."""
    import random

    import torch.nn.functional as F
    from hydra.utils import instantiate

    from bench_train import images_per_second

    dev, bs = torch.device(args.device), args.batch_size
    data = instantiate(cfg.dataset)
    data.setup()
    loader = iter(data.train_dataloader())
    g = cfg.model.generator
    G_AB = instantiate(g, in_channels=1, out_channels=1).to(dev)
    G_BA = instantiate(g, in_channels=1, out_channels=1).to(dev)
    D_A = instantiate(cfg.model.discriminator, in_channels=1).to(dev)
    D_B = instantiate(cfg.model.discriminator, in_channels=1).to(dev)
    opt_g = instantiate(cfg.optimizer.generator)([*G_AB.parameters(), *G_BA.parameters()])
    opt_d = instantiate(cfg.optimizer.discriminator)([*D_A.parameters(), *D_B.parameters()])
    pools = {"A": [], "B": []}

    def pooled(name, images):  # the reference's ImagePool(50), per image on the host
        out = []
        for image in images:
            pool = pools[name]
            if len(pool) < 50:
                pool.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                k = random.randint(0, 49)
                out.append(pool[k].clone())
                pool[k] = image
            else:
                out.append(image)
        return torch.stack(out)

    def mse(x, target):
        return F.mse_loss(x, torch.full_like(x, target))

    def iteration():
        nonlocal loader
        try:
            batch = next(loader)
        except StopIteration:
            loader = iter(data.train_dataloader())
            batch = next(loader)
        a, b = batch["A"].to(dev, non_blocking=True), batch["B"].to(dev, non_blocking=True)
        for d in (D_A, D_B):
            d.requires_grad_(False)
        fake_b, fake_a = G_AB(a), G_BA(b)
        loss_g = mse(D_B(fake_b), 1) + mse(D_A(fake_a), 1) + \
            10 * F.l1_loss(G_BA(fake_b), a) + 10 * F.l1_loss(G_AB(fake_a), b)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for d in (D_A, D_B):
            d.requires_grad_(True)
        pa, pb = pooled("A", fake_a.detach()), pooled("B", fake_b.detach())
        loss_d = 0.5 * (mse(D_A(a), 1) + mse(D_A(pa), 0)) + 0.5 * (mse(D_B(b), 1) + mse(D_B(pb), 0))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    return images_per_second(iteration, warmup, args.iterations, bs, dev,
                             precision=args.precision)


# ---- the driver ------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the folder of Fashion-MNIST's IDX files")
    p.add_argument("--out", type=Path, required=True, help="where results.json and logs go")
    p.add_argument("--work", default="/tmp/ganrun_gpu", help="run folders, weights, caches")
    p.add_argument("--deadline-at", type=float, default=None,
                   help="a time.time() after which nothing starts (default: in 270 s)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, any device: a rehearsal")
    p.add_argument("--cpu", action="store_true", help="measure on the CPU even with a GPU")
    p.add_argument("--resume", action="store_true", help="go on from --out's results.json")
    p.add_argument("--only", nargs="*", default=None, help="measurements named so (prefixes)")
    p.add_argument("--skip", nargs="*", default=[], help="measurements not to run (prefixes)")
    p.add_argument("--list", action="store_true", help="print the plan and exit")
    args = p.parse_args(argv)
    args.deadline_at = args.deadline_at or time.time() + 270
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({os.cpu_count()} cores)"


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.smoke or args.cpu or args.list or torch.cuda.is_available()):
        print("bench.py: no CUDA device; --smoke rehearses on a CPU, --cpu measures one")
        return 2
    os.environ.setdefault("TORCH_HOME", str(Path(args.work) / "torch_home"))
    from ganrun.runner.allocator import keep_freed_memory

    keep_freed_memory()  # ganrun's default, once for both sides: malloc settings stay
    bench = Bench(args)
    items = [i for i in plan(bench)
             if (args.only is None or i.name.startswith(tuple(args.only)))
             and not i.name.startswith(tuple(args.skip) if args.skip else ())
             and not (args.smoke and i.repeats)]  # a rehearsal runs each code path once
    if args.list:
        print("\n".join(f"{i.name} (at least {i.seconds:.0f} s)" for i in items))
        return 0
    header = {"machine": machine(), "device": bench.device, "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": sys.version.split()[0], "smoke": args.smoke,
              "started_at": time.time(), "deadline_s": round(args.deadline_at - time.time(), 1)}
    report = Report(args.out, args.resume, header)
    for item in items:
        if report.done(item.name):
            continue
        need = 1 if args.smoke else item.seconds
        if bench.left() < need:
            report.finish(item.name, {"status": "skipped", "reason": (
                f"the deadline: {bench.left():.0f} s left, it needs at least {need:.0f} s")})
            print(f"{item.name}: skipped (deadline)", flush=True)
            continue
        report.running(item.name)
        start = time.perf_counter()
        try:
            result = item.run()
        except Failed as err:
            result = {"status": "failed", "reason": err.reason,
                      "log": report.failure_log(item.name, err.output)}
        except Exception as err:  # noqa: BLE001: one measurement's failure ends only it
            result = {"status": "failed", "reason": f"{type(err).__name__}: {err}"[:500],
                      "log": report.failure_log(item.name, traceback.format_exc())}
        result["wall_s"] = round(time.perf_counter() - start, 2)
        report.finish(item.name, result)
        shown = {k: v for k, v in result.items() if k in ("status", "images_per_s", "reason",
                                                          "features_per_s", "total_s")}
        print(f"{item.name}: {shown} ({result['wall_s']} s)", flush=True)
    print(json.dumps({"summary": report.data.get("summary", {}),
                      "elapsed_s": report.data["elapsed_s"]}, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
