"""The GAN zoo: Wasserstein, WGAN-GP, RaGAN, R1, weight clipping, spectral norm, EMA, ..."""

import math

import pytest
import torch
from torch import nn

from conftest import TINY, run_ganrun, scalars
from ganrun.training.losses import RelativisticAverage, Wasserstein
from ganrun.training.regularizers import R1, GradientPenalty, WeightClip


class LinearD(nn.Module):
    """D(x) = w . x + b: its input gradient is w everywhere."""

    def __init__(self, size: int = 12):
        super().__init__()
        self.lin = nn.Linear(size, 1)

    def forward(self, x, labels=None):
        return self.lin(x.flatten(1)).flatten()


class SquareD(nn.Module):
    """D(x) = s/2 ||x||^2: its input gradient is s x."""

    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(3.0))

    def forward(self, x, labels=None):
        return self.s / 2 * x.flatten(1).square().sum(1)


def images(n=4, seed=0):
    return torch.randn(n, 3, 2, 2, generator=torch.Generator().manual_seed(seed))


def test_wasserstein_and_ragan_values():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    assert Wasserstein().d_loss(real, fake).item() == pytest.approx(0 - 3)
    assert Wasserstein().g_loss(fake).item() == pytest.approx(0)
    ragan, zero = RelativisticAverage(), torch.zeros(4)
    assert ragan.d_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert ragan.g_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    # G gains when its fakes score above the average real, D when the reals do.
    assert ragan.g_loss(real, fake) < ragan.g_loss(fake, real)
    assert ragan.d_loss(real, fake) < ragan.d_loss(fake, real)


def test_gradient_penalty_equals_its_formula_on_a_linear_d():
    d = LinearD()
    w = d.lin.weight.detach().flatten()
    expected = 10 * (w.norm() - 1) ** 2  # ||grad D|| = ||w|| at every interpolate
    penalty = GradientPenalty(weight=10).penalty(d, images(seed=1), images(seed=2), None)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    penalty.backward()  # differentiable in D's weights: d/dw = 20 (||w|| - 1) w / ||w||
    assert torch.allclose(d.lin.weight.grad.flatten(), 20 * (w.norm() - 1) * w / w.norm(),
                          rtol=1e-4)


def test_r1_equals_its_formula_on_a_quadratic_d():
    d, real = SquareD(), images()
    expected = 5 / 2 * (3 * real.flatten(1)).square().sum(1).mean()  # gamma/2 E||s x||^2
    assert R1(gamma=5).penalty(d, real, None, None).item() == pytest.approx(expected.item(),
                                                                             rel=1e-5)


class MlpD(nn.Module):
    """Linear layers, which bf16 autocast runs in bf16: a penalty computed under autocast differs
    from the fp32 one."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x, labels=None):
        return self.net(x).squeeze(1)


@pytest.mark.parametrize("penalty", [R1(gamma=5), GradientPenalty(weight=10)],
                         ids=["r1", "gradient_penalty"])
def test_penalties_are_computed_in_fp32_under_bf16_autocast(penalty):
    d, real, fake = MlpD(), images(), images(seed=3)
    torch.manual_seed(1)
    exact = penalty.penalty(d, real, fake, None)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert d(real).dtype == torch.bfloat16  # autocast does change this D
        mixed = penalty.penalty(d, real, fake, None)
    assert mixed.dtype == torch.float32 and mixed.item() == exact.item()


def test_weight_clip_bounds_every_parameter():
    d = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    WeightClip(clip_value=0.05).after_step(d)
    assert all(p.abs().max() <= 0.05 for p in d.parameters())


def test_lazy_penalties_are_due_every_interval_and_scaled_by_it():
    from ganrun.training.losses import NonSaturating
    from ganrun.training.regularizers import d_penalties
    from ganrun.tasks.generation import Generation

    gan = Generation(nn.Identity(), SquareD(), NonSaturating(), latent_dim=2,
                     regularizers={"r1": R1(gamma=1, interval=4)})
    real = images()
    plain = R1(gamma=1).penalty(gan.discriminator, real, None, None)
    due = []
    for step in range(8):
        penalties = d_penalties(gan.regularizers, gan.discriminator, real, real, None, step)
        due.append(step) if penalties else None
        if penalties:
            assert penalties["r1"].item() == pytest.approx(4 * plain.item())
    assert due == [0, 4]


def mnist_args(root, *extra):
    return ["train", *TINY, "dataset=mnist", f"dataset.root={root}", *extra]


def test_each_loss_and_regularizer_trains(tmp_path, mnist_root):
    run_ganrun(*mnist_args(mnist_root, "-m", "loss=wasserstein,wgan_gp,ragan", "regularizer=r1",
                           "regularizers.r1.interval=2", "model.discriminator.norm=layer",
                           "callbacks.scalars.every_n_iterations=1", "hydra.sweep.dir=sweep"),
               cwd=tmp_path)
    jobs = sorted((tmp_path / "sweep").glob("[0-9]*"), key=lambda p: int(p.name))
    assert len(jobs) == 3
    for job in jobs:
        logged = scalars(job)
        assert [step for step, _ in logged["loss/g"]] == [1, 2, 3], job
        assert all(math.isfinite(v) for _, v in logged["loss/d"])
        assert [step for step, _ in logged["reg/r1"]] == [1, 3]  # lazy: D updates 0 and 2
    # wasserstein's weight clipping held for every parameter of the saved D.
    state = torch.load(jobs[0] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    d_params = [v for k, v in state.items() if k.startswith("task.nets.D.") and
                "running" not in k and "num_batches" not in k]
    assert max(p.abs().max().item() for p in d_params) <= 0.01


def test_wgan_gp_in_bf16_on_cpu_is_finite(tmp_path, mnist_root):
    run = tmp_path / "run"
    run_ganrun(*mnist_args(mnist_root, "loss=wgan_gp", "hardware=[cpu,bf16]",
                           "model.discriminator.norm=layer", "trainer.n_critic=2",
                           "callbacks.scalars.every_n_iterations=1", f"hydra.run.dir={run}"),
               cwd=tmp_path)
    logged = scalars(run)
    values = [v for tag in ("loss/d", "loss/g", "reg/gradient_penalty") for _, v in logged[tag]]
    assert values and all(math.isfinite(v) for v in values)


def largest_singular_values(net: nn.Module) -> list[float]:
    from torch.nn.utils import parametrize

    return [torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2).item()
            for layer in net.modules() if parametrize.is_parametrized(layer, "weight")]


SPECTRAL = [  # (module, class, keyword arguments, input shape)
    ("dcgan", "Discriminator", {"channels": 1, "image_size": 28, "width": 8,
                                "spectral_norm": True}, (4, 1, 28, 28)),
    ("mlp", "Discriminator", {"channels": 1, "image_size": 8, "hidden": (16, 8),
                              "spectral_norm": True}, (4, 1, 8, 8)),
    ("sngan", "Discriminator", {"channels": 3, "image_size": 32, "width": 8}, (4, 3, 32, 32)),
]


@pytest.mark.parametrize("module, cls, kwargs, shape", SPECTRAL)
def test_spectral_norm_keeps_each_layer_near_one(module, cls, kwargs, shape):
    import importlib

    torch.manual_seed(0)
    d = getattr(importlib.import_module(f"ganrun.nets.{module}"), cls)(**kwargs)
    x = torch.randn(shape)
    for _ in range(30):  # each training-mode forward is one power iteration
        d(x)
    sigmas = largest_singular_values(d)
    assert len(sigmas) >= 3
    assert sigmas == pytest.approx([1.0] * len(sigmas), abs=0.02)


@pytest.mark.parametrize("size, channels", [(32, 3), (28, 1)])
def test_sngan_shapes(size, channels):
    from ganrun.nets import sngan

    g = sngan.Generator(latent_dim=8, channels=channels, image_size=size, width=8)
    d = sngan.Discriminator(channels=channels, image_size=size, width=8)
    images = g(torch.randn(2, 8))
    assert images.shape == (2, channels, size, size) and d(images).shape == (2,)


def test_ema_follows_its_formula_with_a_fixed_decay():
    from ganrun.training.ema import GeneratorEMA

    g = nn.Linear(3, 2)
    start = g.weight.detach().clone()
    ema = GeneratorEMA(g, decay=0.9)
    expected = start.clone()
    for k in range(5):
        with torch.no_grad():
            g.weight.add_(k + 1.0)
        ema.update(g, images_seen=8 * (k + 1), batch_size=8)
        expected = 0.9 * expected + 0.1 * g.weight.detach()
    assert torch.allclose(ema.generator.weight, expected)
    assert not torch.equal(ema.generator.weight, g.weight)


def test_ema_half_life_and_rampup():
    from ganrun.training.ema import GeneratorEMA

    ema = GeneratorEMA(nn.Linear(1, 1), half_life_kimg=0.064, rampup=None)
    assert ema.beta(images_seen=10**6, batch_size=64) == pytest.approx(0.5)  # 64 images: halves
    ramped = GeneratorEMA(nn.Linear(1, 1), half_life_kimg=10, rampup=0.5)
    # 128 images seen: the half-life is capped at 64 images.
    assert ramped.beta(images_seen=128, batch_size=64) == pytest.approx(0.5)
    assert ramped.beta(images_seen=10**8, batch_size=64) == pytest.approx(0.5 ** (64 / 10000))


def test_generate_uses_the_ema_generator():
    from ganrun.training.ema import GeneratorEMA
    from ganrun.training.losses import NonSaturating
    from ganrun.tasks.generation import Generation

    g = LinearD(2)  # any net with forward(x, labels) does as a generator here
    ema = GeneratorEMA(g, decay=0.5)
    with torch.no_grad():
        ema.generator.lin.weight.fill_(7.0)
    gan = Generation(g, LinearD(1), NonSaturating(), latent_dim=2, ema=ema)
    z = torch.ones(1, 2)
    assert torch.allclose(gan.inference().generate(z), ema.generator(z))
    assert not torch.allclose(gan.inference().generate(z), g(z))


def test_each_conditioning_trains_with_one_grid_row_per_class(tmp_path, mnist_root):
    from PIL import Image

    run_ganrun(*mnist_args(mnist_root, "-m", "conditioning=embedding,projection,acgan",
                           "hydra.sweep.dir=sweep"), cwd=tmp_path)
    jobs = sorted((tmp_path / "sweep").glob("[0-9]*"), key=lambda p: int(p.name))
    assert len(jobs) == 3
    for job in jobs:
        assert all(math.isfinite(v) for _, v in scalars(job)["loss/d"])
        grid = sorted((job / "samples").glob("*.png"))[-1]
        # 10 rows of debug=tiny's 2 images of 28x28 with make_grid's 2-pixel padding.
        assert Image.open(grid).size == (2 * 30 + 2, 10 * 30 + 2)


def test_conditional_sngan_and_unlabelled_data(tmp_path, mnist_root):
    run_ganrun("train", *TINY, "dataset=mnist", f"dataset.root={mnist_root}", "model=sngan",
               "model.latent_dim=8", "model.generator.width=8", "model.discriminator.width=8",
               "loss=hinge", "conditioning=projection", "trainer.max_steps=2",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    proc = run_ganrun("train", *TINY, "dataset=ring", "conditioning=acgan", "model=mlp",
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "needs class labels" in proc.stderr


def test_sample_label_k_of_a_conditional_model(tmp_path, mnist_root, monkeypatch):
    import numpy as np

    import ganrun.inference.loading
    from ganrun.commands.sample import SampleConfig, sample

    run = tmp_path / "run"
    run_ganrun(*mnist_args(mnist_root, "conditioning=projection", "ema=decay",
                           f"hydra.run.dir={run}"), cwd=tmp_path)
    seen = []
    load = ganrun.inference.loading.load

    def spying_load(*args, **kwargs):
        loaded = load(*args, **kwargs)
        loaded.model.generator.register_forward_hook(lambda m, inputs, out: seen.append(inputs[1]))
        return loaded

    monkeypatch.setattr(ganrun.inference.loading, "load", spying_load)
    sample(SampleConfig(ckpt=str(run / "checkpoints" / "last.ckpt"), num=6, format="npz",
                        out=str(tmp_path / "out"), device="cpu"), ["label=3"])
    saved = np.load(tmp_path / "out" / "samples.npz")
    assert saved["labels"].tolist() == [3] * 6 and len(saved["images"]) == 6
    assert torch.cat(seen).tolist() == [3] * 6  # the (EMA) generator was asked for class 3
    model = load(run / "checkpoints" / "last.ckpt").model
    z = torch.randn(2, 8)
    assert not torch.equal(model.generate(z, torch.tensor([3, 3])),
                           model.generate(z, torch.tensor([4, 4])))
    # The EMA generator is checkpointed next to G, differs from it, and generate() uses it.
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    ema_keys = [k for k in state if k.startswith("task.ema.generator.")]
    assert len(ema_keys) == len([k for k in state if k.startswith("task.nets.G.")])
    assert any(not torch.equal(state[k], state[k.replace("task.ema.generator.", "task.nets.G.")])
               for k in ema_keys)
    labels = torch.tensor([1, 2])
    ema = {k.removeprefix("task.ema.generator."): state[k] for k in ema_keys}
    assert all(torch.equal(v, ema[k]) for k, v in model.generator.state_dict().items())
    assert torch.equal(model.generate(z, labels), model.generator.eval()(z, labels))


def test_diffaugment_is_differentiable_seeded_and_shape_preserving():
    from ganrun.training.augment import DiffAugment, cut_out, translate

    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    augment = DiffAugment()
    torch.manual_seed(1)
    a = augment(x)
    torch.manual_seed(1)
    assert torch.equal(a, augment(x)) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    ones = torch.ones(16, 1, 8, 8)
    # Cutout erases a 4x4 square (clipped at the border), translation pads with zeros.
    erased = (cut_out(ones, 0.5) == 0).flatten(1).sum(1)
    assert ((erased > 0) & (erased <= 16)).all() and (erased == 16).any()
    assert translate(ones, 0.125).sum() <= ones.sum()


def test_resume_is_exact_with_ema_lazy_r1_warmup_diffaugment_and_ttur(tmp_path, mnist_root):
    common = ["seed=5", "ema=half_life", "ema.half_life_kimg=0.01", "regularizer=r1",
              "regularizers.r1.interval=3", "trainer.d_warmup_steps=2", "augment=diffaugment",
              "optimizer=ttur",
              "callbacks.scalars.every_n_iterations=1",
              "callbacks.checkpoint.last_every_n_iterations=1"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_ganrun(*mnist_args(mnist_root, *common, "trainer.max_steps=5", f"hydra.run.dir={whole}"),
               cwd=tmp_path)
    run_ganrun(*mnist_args(mnist_root, *common, "trainer.max_steps=2", f"hydra.run.dir={split}"),
               cwd=tmp_path)
    run_ganrun("train", "resume=true", "trainer.max_steps=5", f"hydra.run.dir={split}",
               cwd=tmp_path)
    for tag in ("loss/d", "loss/g", "reg/r1"):
        assert scalars(whole)[tag] == scalars(split)[tag], tag
    a, b = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
            for run in (whole, split))
    ema_keys = [k for k in a["state_dict"] if k.startswith("task.ema.")]
    assert ema_keys and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in ema_keys)
    # 2 warm-up D updates, then D, G five times; TTUR's two learning rates.
    assert b["ganrun"]["counters"]["D"] == 7 and b["ganrun"]["iteration"] == 5
    assert [s["state"][0]["step"].item() for s in b["optimizer_states"]] == [7, 5]
    assert [s["param_groups"][0]["lr"] for s in b["optimizer_states"]] == [4e-4, 1e-4]


PRESETS = ["dcgan_mnist", "wgan_mnist", "wgan_gp_mnist", "cgan_mnist", "sngan_cifar10"]
CONDITIONAL = {"cgan_mnist", "cgan_fashion_mnist", "best_fashion_mnist"}


@pytest.mark.parametrize("preset", PRESETS + [p.replace("mnist", "fashion_mnist")
                                              for p in PRESETS if p.endswith("_mnist")] +
                         ["sngan_fashion_mnist", "best_fashion_mnist"])
def test_every_preset_builds_its_module(preset, tmp_path):
    from test_config import composed

    from ganrun.runner.build import build_module

    cfg = composed(f"experiment={preset}", tmp_path=tmp_path)
    size = 32 if "cifar" in preset else 28
    shape = {"channels": 3 if "cifar" in preset else 1, "image_size": size, "num_classes": 10}
    module = build_module(cfg, shape)
    sampler = module.task.inference()
    assert sampler.generate(torch.randn(2, cfg.model.latent_dim),
                            sampler.conditions(2)).shape[-1] == size
    assert (module.task.num_classes == 10) == (preset in CONDITIONAL)
    assert ("wgan" in preset) == (cfg.loss._target_ == "ganrun.training.losses.Wasserstein")


def test_best_fashion_mnist_is_the_recipe_the_readme_measured(tmp_path):
    """README's FID 12.6 (full protocol) was measured with `cgan_fashion_mnist` as it is now;
    best_fashion_mnist pins that recipe: the same composed config."""
    from omegaconf import OmegaConf
    from test_config import composed

    best, cgan = (OmegaConf.to_container(composed(f"experiment={name}", tmp_path=tmp_path))
                  for name in ("best_fashion_mnist", "cgan_fashion_mnist"))
    assert best == cgan
    assert best["model"]["generator"]["embed_dim"] == 10 and best["trainer"]["max_epochs"] == 20
    assert best["model"]["conditioning"]["_target_"] == "ganrun.nets.conditioning.Projection"
