"""Training throughput of `ganrun train` next to a plain PyTorch loop (target: ganrun >= 0.95x).

Both sides train DCGAN on Fashion-MNIST with the same generator, discriminator, loss (bce),
Adam settings, batch size, data and update rule (per iteration: ``n_critic`` D steps on fresh
real batches, then one G step), and throughput is images/s = iterations * batch * n_critic / s.

ganrun side: the real command ``python -m ganrun train ... trainer.max_steps=N`` with the
default config (callbacks, logging, progress bar: what a user gets), run as a subprocess for
N = --short and N = --short + --iterations. Its wall time also holds process start-up, imports,
reading the data, building the models and the final checkpoint/sample writes; these are the
same for both lengths, so the difference of the two times is the cost of the extra
``--iterations`` steady-state iterations alone.

plain side: a hand-written loop over the same objects (built from the same composed config),
a few warm-up iterations, then ``--iterations`` timed with perf_counter; each measurement in a
fresh process, like ganrun's. ganrun sets glibc's malloc to keep freed buffers for reuse
(``trainer.keep_freed_memory``, see ganrun/runner/allocator.py), which a hand-written loop does not
get by default, so the plain loop is measured both ways: with the default allocator (what a
user's own loop gets; the target's baseline) and with ganrun's setting (the same footing, so
that ratio is the framework's own overhead).

Each measurement is repeated ``--repeats`` times, interleaved, and the best is kept: noise on a
shared machine only ever slows a run down, so the plain loop's highest rate and ganrun's fastest
short and fastest long run are the least disturbed figures. Extra overrides after ``--`` go to
`ganrun train` and to the composed config of the plain loop, e.g.
    python scripts/bench_train.py -- model.generator.width=32

``--stylegan2`` measures StyleGAN2 instead (experiment=stylegan2_fashion_mnist: 32x32, G, G_reg
every 4 batches, D, D_reg every 16, style mixing, EMA): the plain loop is a hand-written
version of NVIDIA's loop over the same networks, phases, optimizers and batch; images/s =
iterations * batch / s. Use enough iterations to cover the lazy phases' cycle (16), e.g.
    python scripts/bench_train.py --stylegan2 --iterations 32 --short 8 --batch-size 32
"""

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import math
import time
from math import nan

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ganrun.runner.allocator import keep_freed_memory
from ganrun.config import config_dir
from ganrun.data import FashionMNIST
from ganrun.data.base import to_unit_range


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--iterations", type=int, default=150, help="timed iterations")
    p.add_argument("--short", type=int, default=20, help="length of the short ganrun run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", choices=["cpu", "cuda"],
                   default="cuda" if torch.cuda.is_available() else "cpu", help="plain loop's device")
    p.add_argument("--hardware", help="ganrun hardware option (default: cpu, or auto with --device cuda)")
    p.add_argument("--keep", action="store_true", help="keep the ganrun run folders")
    p.add_argument("--stylegan2", action="store_true",
                   help="StyleGAN2 (experiment=stylegan2_fashion_mnist) instead of DCGAN")
    p.add_argument("overrides", nargs="*", help="extra ganrun overrides, after --")
    args = p.parse_args()
    args.hardware = args.hardware or ("auto" if args.device == "cuda" else "cpu")
    if args.stylegan2:
        args.overrides.insert(0, "experiment=stylegan2_fashion_mnist")
    for o in [o for o in args.overrides if o.startswith("hardware=")]:  # -- hardware=[cpu,bf16]
        args.hardware = o.split("=", 1)[1]
        args.overrides.remove(o)
    return args


def ganrun_seconds(args, steps: int, run_dir: str) -> float:
    cmd = [sys.executable, "-m", "ganrun", "train", f"dataset.root={args.root}",
           f"dataset.batch_size={args.batch_size}", f"trainer.max_steps={steps}", "seed=0",
           f"hardware={args.hardware}", f"hydra.run.dir={run_dir}", *args.overrides]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"`{' '.join(cmd)}` failed:\n{done.stderr[-3000:]}")
    return seconds


def plain_loop(args, cfg, images: torch.Tensor, warmup: int = 5) -> float:
    """Images/s of a hand-written loop with ganrun's update rule (see ganrun/runner/module.py)."""
    dev, bs, n_critic = torch.device(args.device), args.batch_size, cfg.trainer.n_critic
    torch.manual_seed(0)
    shape = {"channels": 1, "image_size": 28}
    g = instantiate(cfg.model.generator, latent_dim=cfg.model.latent_dim, **shape).to(dev)
    d = instantiate(cfg.model.discriminator, **shape).to(dev)
    loss = instantiate(cfg.loss)
    opt_g = instantiate(cfg.optimizer.generator)(g.parameters())
    opt_d = instantiate(cfg.optimizer.discriminator)(d.parameters())
    z = lambda: torch.randn(bs, cfg.model.latent_dim, device=dev)  # noqa: E731
    # The order where the images are: indexing device images needs no host copy per batch.
    order, pos = torch.randperm(len(images), device=images.device), 0

    def real_batch():
        nonlocal order, pos
        if pos + bs > len(order):  # drop_last, new epoch
            order, pos = torch.randperm(len(images), device=images.device), 0
        pos += bs
        return to_unit_range(images[order[pos - bs:pos]]).to(dev, non_blocking=True)

    def iteration():
        for _ in range(n_critic):
            with torch.no_grad():
                fake = g(z())
            d_loss = loss.d_loss(d(real_batch()), d(fake))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        d.requires_grad_(False)  # as Lightning's toggle_optimizer does
        g_loss = loss.g_loss(d(g(z())))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)

    return images_per_second(iteration, warmup, args.iterations, bs * n_critic, dev,
                             precision=getattr(args, "precision", "fp32"))


def images_per_second(iteration, warmup: int, iterations: int, images: int, dev,
                      after_warmup=lambda: None, precision: str = "fp32") -> float:
    """Rate of ``iterations`` calls of ``iteration`` (``images`` each) after ``warmup``;
    ``precision="bf16"`` runs them under bf16 autocast, as Lightning's bf16-mixed does."""
    if precision == "bf16":
        plain = iteration

        def iteration():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                plain()
    for _ in range(warmup):
        iteration()
    after_warmup()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(iterations):
        iteration()
    sync()
    return iterations * images / (time.perf_counter() - start)


def plain_loop_stylegan2(args, cfg, images: torch.Tensor, warmup: int = 3) -> float:
    """Images/s of a hand-written StyleGAN2 loop (NVIDIA's training_loop.py and loss.py) over
    the networks, phases, optimizers and batch of ``cfg`` (task=stylegan2)."""
    from ganrun.training.ema import GeneratorEMA
    from ganrun.training.optim import lazy_regularized_adam

    dev, bs, task = torch.device(args.device), args.batch_size, cfg.task
    size = cfg.dataset.image_size
    torch.manual_seed(0)
    shape = {"channels": 1, "image_size": size}
    g = instantiate(cfg.model.generator, latent_dim=cfg.model.latent_dim, **shape).to(dev)
    d = instantiate(cfg.model.discriminator, **shape).to(dev)
    ema = GeneratorEMA(g, half_life_kimg=cfg.ema.half_life_kimg, rampup=cfg.ema.rampup).to(dev)
    opt = cfg.optimizer.generator
    opt_g = lazy_regularized_adam(g.parameters(), opt.lr, list(opt.betas), opt.eps,
                                  task.g_reg_interval)
    opt_d = lazy_regularized_adam(d.parameters(), opt.lr, list(opt.betas), opt.eps,
                                  task.d_reg_interval)
    pl_mean = torch.zeros([], device=dev)
    order, pos, batch_idx = torch.randperm(len(images), device=images.device), 0, 0

    def real_batch():
        nonlocal order, pos
        if pos + bs > len(order):
            order, pos = torch.randperm(len(images), device=images.device), 0
        pos += bs
        x = to_unit_range(images[order[pos - bs:pos]])
        x = F.interpolate(x, (size, size), mode="bilinear", antialias=True, align_corners=False)
        return x.to(dev)

    def run_g(z):
        ws = g.mapping(z)
        cutoff = int(torch.randint(1, ws.shape[1], ()))
        if float(torch.rand(())) < task.style_mixing_prob:
            ws = torch.cat([ws[:, :cutoff],
                            g.mapping(torch.randn_like(z), update_w_avg=False)[:, cutoff:]], 1)
        return g.synthesis(ws), ws

    def step(optimizer, loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def iteration():
        nonlocal pl_mean, batch_idx
        real = real_batch()
        z = lambda n=bs: torch.randn(n, cfg.model.latent_dim, device=dev)  # noqa: E731
        g.requires_grad_(True)  # the player's parameters only, as Lightning's toggle_optimizer
        d.requires_grad_(False)
        fake, _ = run_g(z())
        step(opt_g, F.softplus(-d(fake)).mean())
        if batch_idx % task.g_reg_interval == 0 and task.pl_weight:
            fake, ws = run_g(z(bs // task.pl_batch_shrink))
            noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
            grads, = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            mean = pl_mean.lerp(lengths.mean(), task.pl_decay)
            pl_mean = mean.detach()
            penalty = (lengths - mean).square() * task.pl_weight
            step(opt_g, (fake[:, 0, 0, 0] * 0 + penalty).mean() * task.g_reg_interval)
        g.requires_grad_(False)
        d.requires_grad_(True)
        with torch.no_grad():
            fake, _ = run_g(z())
        step(opt_d, F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean())
        if batch_idx % task.d_reg_interval == 0 and task.r1_gamma:
            x = real.detach().requires_grad_(True)
            out = d(x)
            grads, = torch.autograd.grad(out.sum(), x, create_graph=True)
            penalty = grads.square().sum([1, 2, 3]) * (task.r1_gamma / 2)
            step(opt_d, (out * 0 + penalty).mean() * task.d_reg_interval)
        ema.update(g, batch_idx * bs, bs)
        batch_idx += 1

    def restart():  # the timed iterations run the lazy phases as often as ganrun's
        nonlocal batch_idx
        batch_idx = 0

    return images_per_second(iteration, warmup, args.iterations, bs, dev, restart,
                             getattr(args, "precision", "fp32"))


def plain_rate(args, overrides: list[str], tuned_malloc: bool) -> float:
    """The plain loop's images/s, measured in a fresh process (see plain_side)."""
    if tuned_malloc:
        keep_freed_memory()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = compose("train", overrides=[f"dataset.batch_size={args.batch_size}", *overrides])
    datamodule = FashionMNIST(root=args.root, download=False)
    datamodule.setup()
    loop = plain_loop_stylegan2 if args.stylegan2 else plain_loop
    return loop(args, cfg, datamodule.dataset.images)  # uint8 (60000, 1, 28, 28)


def plain_side(args, overrides: list[str], tuned_malloc: bool) -> float:
    # A fresh process for each measurement: malloc settings cannot be undone in a process,
    # and ganrun's side also starts fresh every time.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(plain_rate, (args, overrides, tuned_malloc))


def main():
    args = parse_args()
    overrides = [o for o in args.overrides if not o.lstrip("~+").startswith("hydra.")]
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = compose("train", overrides=[f"dataset.batch_size={args.batch_size}", *overrides])
    n_critic = cfg.trainer.n_critic
    long = args.short + args.iterations
    rate = lambda t_short, t_long: (  # noqa: E731; nan: something else hogged the machine
        args.iterations * args.batch_size * n_critic / (t_long - t_short) if t_long > t_short else nan)
    plain, plain_tuned, shorts, longs = [], [], [], []
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        base = tempfile.mkdtemp(prefix="bench_train_", dir=".") if args.keep else tmp
        for r in range(args.repeats):
            def run_ganrun():
                shorts.append(ganrun_seconds(args, args.short, f"{base}/r{r}_short"))
                longs.append(ganrun_seconds(args, long, f"{base}/r{r}_long"))
                print(f"  repeat {r}: ganrun {args.short} it {shorts[-1]:.1f} s, {long} it "
                      f"{longs[-1]:.1f} s -> {rate(shorts[-1], longs[-1]):.0f} img/s", flush=True)

            def run_plain():
                plain.append(plain_side(args, overrides, tuned_malloc=False))
                plain_tuned.append(plain_side(args, overrides, tuned_malloc=True))
                print(f"  repeat {r}: plain {plain[-1]:.0f} img/s, with ganrun's malloc setting "
                      f"{plain_tuned[-1]:.0f} img/s", flush=True)

            for step in (run_plain, run_ganrun) if r % 2 == 0 else (run_ganrun, run_plain):
                step()
    # Noise only lengthens a run, so the best estimate of each is its fastest time; for ganrun
    # that is the fastest short and the fastest long run (a slow short run would inflate a
    # single pair's difference).
    best_plain, best_tuned, best_ganrun = max(plain), max(plain_tuned), rate(min(shorts), min(longs))
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    listed = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    name = "StyleGAN2 (stylegan2_fashion_mnist)" if args.stylegan2 else "DCGAN"
    print(f"\n{name} on Fashion-MNIST, batch {args.batch_size}, n_critic {n_critic}, "
          f"{args.iterations} timed iterations, best of {args.repeats}")
    print(f"device: {device} | torch {torch.__version__} | ganrun hardware={args.hardware}"
          + (f" | overrides: {' '.join(args.overrides)}" if args.overrides else ""))
    print(f"plain PyTorch loop:                  {best_plain:8.1f} img/s   (all: {listed(plain)})")
    print(f"plain loop, ganrun's malloc setting: {best_tuned:8.1f} img/s   (all: {listed(plain_tuned)})")
    print(f"ganrun train:                        {best_ganrun:8.1f} img/s   "
          f"(fastest {args.short}/{long}-iteration runs: {min(shorts):.1f}/{min(longs):.1f} s)")
    print(f"ratio ganrun/plain: {best_ganrun / best_plain:.2f}x (target >= 0.95)")
    print(f"ratio ganrun/plain with the same malloc setting: {best_ganrun / best_tuned:.2f}x "
          f"(the framework's own overhead)")
    print(f"benchmark wall time: {time.perf_counter() - wall:.0f} s"
          + (f"; run folders kept in {base}" if args.keep else ""))


if __name__ == "__main__":
    main()
