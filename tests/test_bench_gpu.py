"""scripts/bench_gpu.sh, the one prepared GPU measurement, runs end to end with --smoke on a
CPU (tiny networks, a few iterations) and writes a JSON with every figure the README's
Performance table reads."""

import json
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_gpu.sh"


def test_bench_gpu_smoke_writes_every_figure(tmp_path, fashion_root, torch_home):
    out = tmp_path / "bench.json"
    proc = subprocess.run(["bash", str(SCRIPT), "--smoke", "--root", str(fashion_root),
                           "--out", str(out)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TORCH_HOME": str(torch_home)})
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] and report["machine"]
    for preset in ("dcgan_fashion_mnist", "stylegan2_fashion_mnist", "cyclegan_fashion_mnist"):
        rates = report["training"][preset]["images_per_s"]
        assert set(rates) == {"plain_fp32", "plain_bf16", "eager_fp32", "eager_bf16",
                              "compile_fp32", "graphs_fp32"}
        assert all(rate > 0 for rate in rates.values()), (preset, rates)  # no run failed
        assert report["training"][preset]["ratio_eager_fp32"] > 0
    inception = report["inception"]
    assert inception["features_per_s"] > 0 and inception["fid_relative_difference"] < 1e-3
    assert report["lucic"]["total_s"] > 0 and report["lucic"]["fid"] > 0
