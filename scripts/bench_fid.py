"""Benchmark of the metric path on real Fashion-MNIST, as ratios measured in the same run:

1. feature-extraction throughput of the metric path with the network folded for inference
   and, on a CPU, run on chunks of 20 images (the default, ``InceptionFeatures(fast=True)``) vs
   the plain network as torchmetrics builds it, run on whole batches of the metrics group's
   size (100), on the same images, alternated ``--repeats`` times (best of each; target >= 2x
   on a CPU), and the largest feature difference between the two (target < 1e-4);
2. the metric path ([-1, 1] images -> uint8 -> TF1 resize -> Inception, as InceptionMetrics runs
   it) vs a bare forward of the same network's layers on images already resized and normalized
   (target >= 0.9x);
3. wall time of a second FID evaluation, whose real features come from the cache, vs the first
   one, which computes them (target >= 2x faster).

    python scripts/bench_fid.py --root /usr/share/datasets/fashion-mnist

Needs the Inception weights (online, or `ganrun fid-weights --from FILE`). The defaults suit a
CPU (the plain Inception runs at about 4 images/s on 2 cores); on a GPU raise the counts, e.g. --num-real 10000 --num-fake 10000.
"""

import argparse
import tempfile
import time

import torch

from ganrun.data import FashionMNIST
from ganrun.metrics.inception import InceptionFeatures, to_uint8
from ganrun.metrics.scores import FID
from ganrun.metrics.suite import InceptionMetrics
from ganrun.nets.dcgan import Generator

LAYERS = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
          "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
          "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
          "AvgPool"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def bare_forward(net, x: torch.Tensor) -> torch.Tensor:
    for name in LAYERS:
        x = getattr(net, name)(x)
    return x.flatten(1)


def bench_batches(args, device) -> list[torch.Tensor]:
    data = FashionMNIST(root=args.root, download=False, split="test")
    data.setup()
    images, _ = data.dataset.__getitems__(list(range(args.bench_images)))
    return [b.to(device) for b in images.split(args.batch_size)]


def fast_vs_plain(args, device) -> float:
    batches = [to_uint8(b) for b in bench_batches(args, device)]
    networks = {"plain": InceptionFeatures(fast=False).to(device),
                "fast": InceptionFeatures(fast=True).to(device)}
    rates = {name: 0.0 for name in networks}
    features = {}
    for name, net in networks.items():
        net(batches[0])  # warm-up (oneDNN primitives, cuDNN autotuning)
    for _ in range(args.repeats):  # alternated: a busy machine slows both alike
        for name, net in networks.items():
            sync(device)
            start = time.perf_counter()
            features[name] = torch.cat([net(b).pool for b in batches])
            sync(device)
            rates[name] = max(rates[name], args.bench_images / (time.perf_counter() - start))
    difference = (features["fast"] - features["plain"]).abs().max().item()
    print(f"Inception pass: plain {rates['plain']:.2f} img/s, fast {rates['fast']:.2f} img/s, "
          f"ratio {rates['fast'] / rates['plain']:.2f}x (target >= 2x on a CPU; best of "
          f"{args.repeats}, batch {args.batch_size}); largest feature difference "
          f"{difference:.1e} (target < 1e-4)")
    return rates["fast"] / rates["plain"]


def throughput(args, device) -> float:
    batches = bench_batches(args, device)
    suite = InceptionMetrics({"fid": FID()}, batch_size=args.batch_size)
    net = suite.network(device).net
    from torch_fidelity.interpolate_compat_tensorflow import \
        interpolate_bilinear_2d_like_tensorflow1x as resize
    ready = [(resize(to_uint8(b).float(), size=(299, 299), align_corners=False) - 128) / 128
             for b in batches]  # resized and normalized outside the timing
    suite.extract([to_uint8(batches[0])])  # warm-up (allocations, cuDNN autotuning)
    bare_forward(net, ready[0])
    sync(device)
    start = time.perf_counter()
    suite.extract(to_uint8(b) for b in batches)
    sync(device)
    metric_rate = args.bench_images / (time.perf_counter() - start)
    start = time.perf_counter()
    for x in ready:
        bare_forward(net, x)
    sync(device)
    bare_rate = args.bench_images / (time.perf_counter() - start)
    print(f"feature extraction: metric path {metric_rate:.1f} img/s, bare forward "
          f"{bare_rate:.1f} img/s, ratio {metric_rate / bare_rate:.2f}x (target >= 0.9x)")
    return metric_rate / bare_rate


def cached_evaluation(args, device) -> float:
    data = FashionMNIST(root=args.root, download=False, split="train")
    generator = Generator(latent_dim=100, channels=1, image_size=28).to(device).eval()

    def generate(n):
        with torch.no_grad():
            return generator(torch.randn(n, 100, device=device), None)

    with tempfile.TemporaryDirectory() as cache_dir:
        times = []
        for _ in range(2):
            suite = InceptionMetrics({"fid": FID()}, num_samples=args.num_fake,
                                     real_samples=args.num_real, batch_size=args.batch_size,
                                     cache_dir=cache_dir)
            suite.network(device)  # loading the weights is not part of an evaluation
            torch.manual_seed(0)  # the same latents: both evaluations must give the same FID
            start = time.perf_counter()
            fid = suite.evaluate(generate, data)["fid"]
            sync(device)
            times.append(time.perf_counter() - start)
            print(f"evaluation {len(times)}: FID {fid:.2f} in {times[-1]:.1f} s "
                  f"(real passes: {suite.real_passes})")
    print(f"second evaluation (cached real features) {times[0] / times[1]:.2f}x faster than the "
          f"first (target >= 2x; {args.num_real} real, {args.num_fake} generated images)")
    return times[0] / times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--bench-images", type=int, default=100)
    parser.add_argument("--num-real", type=int, default=1000)
    parser.add_argument("--num-fake", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="images per batch, as the metrics group sends them (100)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device: {device}, {torch.get_num_threads()} threads")
    fast_vs_plain(args, device)
    throughput(args, device)
    cached_evaluation(args, device)


if __name__ == "__main__":
    main()
