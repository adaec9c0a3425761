"""GPU speed of ganrun, in one prepared run (scripts/bench_gpu.sh): a JSON of

- ``training``: images/s of a hand-written PyTorch loop (the same networks, optimizers, batch
  and update rule; fp32 and bf16) and of `ganrun train` (eager fp32 and bf16, trainer.compile,
  trainer.cuda_graphs) for dcgan_fashion_mnist, stylegan2_fashion_mnist and
  cyclegan_fashion_mnist, measured in turn, alternated between repeats, each in a fresh process,
  and the ratios ganrun / plain;
- ``inception``: the FID Inception's features/s on the device, the largest feature difference
  from the CPU path, and the relative FID difference between the two paths;
- ``lucic``: the wall time of Lucic et al.'s protocol alone on the device
  (experiment=dcgan_fashion_mnist: 20 epochs, then FID of 10,000 samples against the 10,000
  test images).

Data sets live on the device where ganrun can put them (dataset.on_device=true for
Fashion-MNIST; the CycleGAN domains come from host memory, for ganrun and the plain loop alike).
``--smoke`` runs every part with tiny sizes on whatever device there is, each command in this
process instead of a fresh one (the test suite runs it on a CPU); the figures then mean nothing,
the JSON has every key.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

PRESETS = ("dcgan_fashion_mnist", "stylegan2_fashion_mnist", "cyclegan_fashion_mnist")
VARIANTS = {  # ganrun's side: name -> (hardware, extra overrides)
    "eager_fp32": ("gpu", []),
    "eager_bf16": ("[gpu,bf16]", []),
    "compile_fp32": ("gpu", ["trainer.compile=true"]),
    "graphs_fp32": ("gpu", ["trainer.cuda_graphs=true"]),
}
# Tiny networks for --smoke (any device; a CPU in the test suite).
SMOKE = {
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
BATCH = {"dcgan_fashion_mnist": 64, "stylegan2_fashion_mnist": 32, "cyclegan_fashion_mnist": 8}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", default="bench_gpu.json")
    p.add_argument("--iterations", type=int, default=300, help="timed iterations per run")
    p.add_argument("--warmup", type=int, default=50, help="iterations before the timing")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, any device: a dry run")
    p.add_argument("--skip", nargs="*", default=[], choices=["training", "inception", "lucic"])
    p.add_argument("--plain", nargs=2, metavar=("PRESET", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.smoke:
        args.iterations, args.warmup, args.repeats = 3, 1, 1
    return args


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def overrides(args, preset: str) -> list[str]:
    data = [f"dataset.root={args.root}", "dataset.download=false"]
    if preset != "cyclegan_fashion_mnist":
        data.append(f"dataset.on_device={str(device() == 'cuda').lower()}")
    smoke = SMOKE[preset] + ["dataset.batch_size=8"] if args.smoke else \
        [f"dataset.batch_size={BATCH[preset]}"]
    return [f"experiment={preset}", *data, *smoke]


def hardware(name: str) -> str:
    return name if device() == "cuda" else name.replace("gpu", "cpu")


# ---- ganrun's side ----------------------------------------------------------------------------

def ganrun_rate(args, preset: str, variant: str, folder: Path) -> float:
    """Steady-state images/s of `ganrun train` with a variant, timed by bench_timer.Timer."""
    hw, extra = VARIANTS[variant]
    if args.smoke and variant == "compile_fp32":  # inductor's C++ build takes minutes on a CPU
        extra = [*extra, "trainer.compile_backend=aot_eager"]
    out = folder / f"{preset}_{variant}.json"
    start, stop = args.warmup, args.warmup + args.iterations
    command = [sys.executable, "-m", "ganrun", "train", *overrides(args, preset),
               f"hardware={hardware(hw)}", *extra, f"trainer.max_steps={stop}", "seed=0",
               f"hydra.run.dir={folder / f'{preset}_{variant}'}",
               "callbacks.samples.every_n_iterations=0", "~callbacks.hparams",
               "+callbacks.timer._target_=bench_timer.Timer", f"+callbacks.timer.out={out}",
               f"+callbacks.timer.start={start}", f"+callbacks.timer.stop={stop}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SCRIPTS), *filter(None, [os.environ.get("PYTHONPATH")])])}
    code, stderr = run(command, args.smoke, env)
    if code:
        print(f"  {preset} {variant}: failed ({stderr.strip().splitlines()[-1:]})", flush=True)
        return float("nan")
    return json.loads(out.read_text())["images_per_s"]


def run(command: list[str], here: bool, env: dict | None = None) -> tuple[int, str]:
    """``command`` (python -m ganrun ...) in a fresh process, or with ``here`` in this one."""
    if not here:
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        return done.returncode, done.stderr + done.stdout
    import contextlib
    import io

    from hydra.core.global_hydra import GlobalHydra

    from ganrun.cli import main as ganrun_main

    saved, output = sys.argv, io.StringIO()
    sys.argv = ["ganrun", *command[3:]]
    code = 0
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            ganrun_main()
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    return code, output.getvalue()


# ---- the plain loop ---------------------------------------------------------------------------

def plain_rate(args, preset: str, precision: str) -> float:
    """Images/s of a hand-written loop, in a fresh process (this script with --plain)."""
    command = [sys.executable, __file__, "--plain", preset, precision, "--root", args.root,
               "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    if args.smoke:
        return run_plain(argparse.Namespace(**{**vars(args), "plain": (preset, precision)}))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        print(f"  plain {preset} {precision}: failed ({done.stderr.strip()[-300:]})", flush=True)
        return float("nan")
    return float(done.stdout.strip().splitlines()[-1])


def run_plain(args) -> float:
    from hydra import compose, initialize_config_dir

    from bench_train import plain_loop, plain_loop_stylegan2
    from ganrun.config import config_dir

    preset, precision = args.plain
    names = [o for o in overrides(args, preset) if not o.startswith("dataset.on_device")]
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = compose("train", overrides=names)
    loop_args = argparse.Namespace(device=device(), batch_size=cfg.dataset.batch_size,
                                   iterations=args.iterations, precision=precision)
    if preset == "cyclegan_fashion_mnist":
        return plain_loop_cyclegan(loop_args, cfg, args.warmup)
    from ganrun.data import FashionMNIST

    data = FashionMNIST(root=args.root, download=False)
    data.setup()
    images = data.dataset.images.to(device())  # the data on the device, as ganrun's
    loop = plain_loop_stylegan2 if preset.startswith("stylegan2") else plain_loop
    return loop(loop_args, cfg, images, warmup=args.warmup)


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


def training(args, folder: Path) -> dict:
    results = {}
    for preset in PRESETS:
        runs = {name: [] for name in ("plain_fp32", "plain_bf16", *VARIANTS)}
        for repeat in range(args.repeats):
            sides = ["plain", "ganrun"] if repeat % 2 == 0 else ["ganrun", "plain"]
            for side in sides:
                if side == "plain":
                    for precision in ("fp32", "bf16"):
                        runs[f"plain_{precision}"].append(plain_rate(args, preset, precision))
                else:
                    for variant in VARIANTS:
                        runs[variant].append(ganrun_rate(args, preset, variant, folder))
            print(f"  {preset} repeat {repeat}: " + ", ".join(
                f"{k} {v[-1]:.0f}" for k, v in runs.items()), flush=True)
        best = {k: max(v) if v else float("nan") for k, v in runs.items()}
        results[preset] = {
            "images_per_s": best, "all": runs,
            "ratio_eager_fp32": best["eager_fp32"] / best["plain_fp32"],
            "ratio_eager_bf16": best["eager_bf16"] / best["plain_bf16"],
            "ratio_compile_vs_plain_fp32": best["compile_fp32"] / best["plain_fp32"],
            "ratio_graphs_vs_plain_fp32": best["graphs_fp32"] / best["plain_fp32"],
        }
    return results


# ---- the Inception and the protocol -----------------------------------------------------------

def inception(args) -> dict:
    from ganrun.data import FashionMNIST
    from ganrun.metrics.inception import Features, InceptionFeatures, to_uint8
    from ganrun.metrics.scores import FID
    from ganrun.data.base import to_unit_range

    data = FashionMNIST(root=args.root, download=False, split="test")
    data.setup()
    n = 16 if args.smoke else 2000
    images = to_uint8(to_unit_range(data.dataset.images[:n]))
    net = InceptionFeatures().to(device())
    batch = 8 if args.smoke else 200
    net(images[:batch].to(device()))  # warm-up (cuDNN's algorithm choice)
    if device() == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    on_device = torch.cat([net(part.to(device())).pool for part in images.split(batch)])
    if device() == "cuda":
        torch.cuda.synchronize()
    rate = n / (time.perf_counter() - start)
    k = 8 if args.smoke else 200  # the CPU path is slow: a subset
    cpu = torch.cat([InceptionFeatures().to("cpu")(part).pool for part in images[:k].split(50)])
    difference = (on_device[:k] - cpu).abs().max().item()
    scale = cpu.abs().max().item()
    half = k // 2
    fid_device = FID()(on_device[:half].cpu(), Features(on_device[half:k].cpu()))
    fid_cpu = FID()(cpu[:half], Features(cpu[half:k]))
    return {"device": device(), "features_per_s": rate, "images": n,
            "max_feature_difference": difference, "feature_scale": scale,
            "fid_device": fid_device["fid"], "fid_cpu": fid_cpu["fid"],
            "fid_relative_difference": abs(fid_device["fid"] - fid_cpu["fid"]) /
            max(abs(fid_cpu["fid"]), 1e-12)}


def lucic(args, folder: Path) -> dict:
    """experiment=dcgan_fashion_mnist (20 epochs) then FID-10k, timed as a user runs them."""
    run_dir = folder / "lucic"
    train = [sys.executable, "-m", "ganrun", "train", "experiment=dcgan_fashion_mnist",
             f"dataset.root={args.root}", "dataset.download=false", f"hardware={hardware('gpu')}",
             f"dataset.on_device={str(device() == 'cuda').lower()}", f"hydra.run.dir={run_dir}",
             "seed=0"]
    evaluate = [sys.executable, "-m", "ganrun", "eval", f"ckpt={run_dir}/checkpoints/last.ckpt",
                "metrics=fid", f"device={device()}"]
    if args.smoke:
        train += [*SMOKE["dcgan_fashion_mnist"], "dataset.batch_size=8", "trainer.max_epochs=1",
                  "trainer.max_steps=2"]
        evaluate += ["num_samples=8", "metrics.real_samples=8"]
    else:
        evaluate += ["num_samples=10000"]
    start = time.perf_counter()
    code, output = run(train, args.smoke)
    middle = time.perf_counter()
    if code:
        return {"failed": output[-2000:]}
    code, output = run(evaluate, args.smoke)
    end = time.perf_counter()
    if code:
        return {"failed": output[-2000:]}
    values = [line for line in output.strip().splitlines() if line.startswith("{")]
    return {"train_s": middle - start, "eval_s": end - middle, "total_s": end - start,
            "fid": json.loads(values[-1]).get("fid") if values else None}


def main():
    args = parse_args()
    if args.plain:
        print(run_plain(args))
        return
    started = time.perf_counter()
    machine = torch.cuda.get_device_name() if device() == "cuda" else \
        f"cpu ({os.cpu_count()} cores)"
    report = {"machine": machine, "torch": torch.__version__, "smoke": args.smoke,
              "iterations": args.iterations, "warmup": args.warmup, "repeats": args.repeats}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        folder = Path(tmp)
        if "training" not in args.skip:
            report["training"] = training(args, folder)
        if "inception" not in args.skip:
            report["inception"] = inception(args)
        if "lucic" not in args.skip:
            report["lucic"] = lucic(args, folder)
    report["wall_s"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
