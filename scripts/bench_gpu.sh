#!/usr/bin/env bash
# ganrun's GPU speed, in one prepared run (about 6-8 minutes on an H200): the plain PyTorch
# loop against ganrun (eager fp32/bf16, trainer.compile, trainer.cuda_graphs) for DCGAN,
# StyleGAN2 and CycleGAN on Fashion-MNIST, the FID Inception on the device against the CPU
# path, and Lucic et al.'s whole protocol (20 epochs + FID-10k) alone on the device.
# Writes bench_gpu.json (or --out FILE); --smoke runs it all with tiny sizes on any device.
#   bash scripts/bench_gpu.sh --root /usr/share/datasets/fashion-mnist --out bench_gpu.json
set -euo pipefail
cd "$(dirname "$0")/.."
exec python scripts/bench_gpu.py "$@"
