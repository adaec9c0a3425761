"""The GPU call (scripts/gpu: prepare.sh here, run.sh and bench.py there), as far as a CPU can
run it: results.json is written after every measurement and survives a kill, a variant that
fell back is labelled so and gets no ratio, the Inception check compares two different
computations, the preflight fails in seconds with one line. The whole rehearsal
(scripts/gpu/rehearse.sh: a fresh environment holding only the GPU image's packages, the tree
as a call sends it, run.sh --smoke) takes minutes: GANRUN_TEST_REHEARSAL=1 runs it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import warm

GPU = Path(__file__).resolve().parents[1] / "scripts" / "gpu"


def bench(tmp_path, *only, extra=()) -> dict:
    """scripts/gpu/bench.py --smoke for the named measurements; its results.json."""
    out = tmp_path / "out"
    proc = warm.run([str(GPU / "bench.py"), "--smoke", "--data", str(tmp_path / "data"), "--out",
                     str(out), "--work", str(tmp_path / "work"), "--only", *only, *extra],
                    capture_output=True, text=True, timeout=600,
                    env={**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


@pytest.fixture
def data(tmp_path, fashion_root):
    (tmp_path / "data").symlink_to(fashion_root)
    return tmp_path


def test_a_fallen_back_variant_is_labelled_so_and_gets_no_ratio(data):
    report = bench(data, "dcgan_fashion_mnist/plain_fp32", "dcgan_fashion_mnist/graphs_fp32")
    plain = report["results"]["dcgan_fashion_mnist/plain_fp32"]
    graphs = report["results"]["dcgan_fashion_mnist/graphs_fp32"]
    assert plain["status"] == "ok" and plain["images_per_s"] > 0
    # It trained (a rate), but without graphs: labelled a fallback, with torch's reason.
    assert graphs["status"] == "fallback" and graphs["images_per_s"] > 0
    assert "CPU" in graphs["reason"] and not graphs["acceleration"]["cuda_graphs"]
    assert "graphs_fp32_vs_plain_fp32" not in report["summary"].get("dcgan_fashion_mnist", {})
    assert set(report["results"]) == {"dcgan_fashion_mnist/plain_fp32",
                                      "dcgan_fashion_mnist/graphs_fp32"}


def test_the_inception_check_compares_two_computations(data):
    check = bench(data, "inception_check")["results"]["inception_check"]
    assert check["status"] == "ok" and check["weights"].startswith("random")
    compared = check["cpu"]  # the CPU's fast path against torchmetrics' unfolded network
    # Not equal by construction (folded convolutions, oneDNN), equal to rounding.
    assert 0 < compared["mean_relative_difference"] < 1e-5
    assert 0 < compared["covariance_relative_difference"] < 1e-4
    assert abs(compared["frechet_distance"]) < 1e-2


def test_a_killed_run_leaves_what_finished_and_resumes_after_it(data):
    out, only = data / "out", ["dcgan_fashion_mnist/plain_fp32", "dcgan_fashion_mnist/eager_fp32",
                               "dcgan_fashion_mnist/plain_bf16"]
    command = [str(GPU / "bench.py"), "--smoke", "--data", str(data / "data"), "--out", str(out),
               "--work", str(data / "work"), "--only", *only]
    proc = warm.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    results = out / "results.json"
    while time.time() < deadline and proc.poll() is None:  # killed inside the second one
        if results.is_file() and json.loads(results.read_text()).get("running") == only[1]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = json.loads(results.read_text())
    assert left["running"] == only[1] and left["results"][only[0]]["status"] == "ok"
    warm.run([*command, "--resume"], check=True, capture_output=True, timeout=600)
    report = json.loads(results.read_text())
    assert report["attempts"] == 2 and "running" not in report
    assert [report["results"][name]["status"] for name in only] == ["ok", "crashed", "ok"]
    assert report["results"][only[0]] == left["results"][only[0]]  # not measured again


def carried(tmp_path, fashion_root) -> Path:
    folder = tmp_path / "carried"
    (folder / "wheels").mkdir(parents=True)
    (folder / "wheels" / "MANIFEST").write_text("")
    (folder / "fashion-mnist").symlink_to(fashion_root)
    return folder


def run_sh(tmp_path, *args) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run(["bash", str(GPU / "run.sh"), "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(GPU.parents[1]),
                               "PYTHON": sys.executable})
    return proc, time.perf_counter() - start


def test_the_preflight_fails_in_seconds_with_one_line(tmp_path, fashion_root):
    folder = carried(tmp_path, fashion_root)
    proc, seconds = run_sh(tmp_path, "--carried", str(folder))  # no --smoke, no CUDA here
    assert proc.returncode == 2 and seconds < 120  # a few seconds on an idle machine
    lines = [line for line in proc.stdout.splitlines() if "preflight failed" in line]
    assert len(lines) == 1 and "no CUDA device" in lines[0], proc.stdout
    assert "no CUDA device" in json.loads((tmp_path / "out" / "results.json").read_text())[
        "preflight_failed"]
    (folder / "fashion-mnist").unlink()
    proc, _ = run_sh(tmp_path, "--carried", str(folder), "--smoke")
    assert proc.returncode == 2 and "train-images-idx3-ubyte.gz is missing" in proc.stdout


@pytest.mark.skipif(os.environ.get("GANRUN_TEST_REHEARSAL") != "1", reason=(
    "the whole rehearsal takes 3-7 minutes on a 2-core CPU; set GANRUN_TEST_REHEARSAL=1"))
def test_the_rehearsal_passes_from_a_fresh_environment(tmp_path, fashion_root):
    subprocess.run(["bash", str(GPU / "prepare.sh"), "--data", str(fashion_root), "--dest",
                    str(tmp_path / ".gpu")], check=True, capture_output=True, timeout=600)
    proc = subprocess.run(["bash", str(GPU / "rehearse.sh"), "--carried", str(tmp_path / ".gpu"),
                           "--work", str(tmp_path / "rehearsal")], capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "rehearsal" / "out" / "results.json").read_text())
    statuses = {name: r["status"] for name, r in report["results"].items()}
    assert statuses.pop("dcgan_fashion_mnist/graphs_fp32") == "fallback"  # a CPU
    assert set(statuses.values()) == {"ok"} and "lucic" in statuses
    assert (tmp_path / "rehearsal" / "out" / "lucic_generator.tar").is_file()
