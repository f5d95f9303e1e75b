"""The benchmarks `make bench` runs still run (one broke unnoticed when graph mode became
explicit): the two that exercise this package's training loop and saliency registry, at
the smallest sizes, each in its own process as `make bench` runs them."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("script, args, expect", [
    ("bench_saliency.py", ["--n", "2", "--batch-size", "2", "--methods", "gradient,xrai"], "| xrai | 2 |"),
    ("bench_training.py", ["--images", "64", "--repeats", "1"], "| salbench |"),
])
def test_benchmark_runs(script, args, expect):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expect in out.stdout, out.stdout[-2000:]


@pytest.mark.slow
def test_data_benchmark_runs():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_data.py"), "--write-images", "200"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "background images/s" in out.stdout, out.stdout[-2000:]
