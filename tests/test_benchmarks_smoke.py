"""The benchmark scripts keep working (quick mode; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["bench_planning.py", "bench_estimator.py", "bench_attention.py", "bench_engine.py"])
def test_benchmark_quick_mode(script, tmp_path, tokenizer_path):
    _run_quick(script, tmp_path, tokenizer_path)


def _run_quick(script, tmp_path, tokenizer_path, *extra):
    """Run ``script --quick``; its JSON results, once it printed a table and recorded its environment."""
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", "--out", str(out),
                           "--tokenizer", str(tokenizer_path), *extra],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["environment"]["python"] and "|" in done.stdout  # a table was printed
    return data


def test_bench_batch_quick_mode(tmp_path, tokenizer_path):
    """Batched synthesis benchmark on the tiny checkpoint: every mode's tokens equal sequential."""
    data = _run_quick("bench_batch.py", tmp_path, tokenizer_path, "--threads", "1")
    modes = data["results"]["modes"]
    assert set(modes) == {"sequential", "B=2", "B=4", "B=8", "B=8 fixed"}
    assert all(m["equal_to_sequential"] for m in modes.values())
    assert set(data["results"]["time_to_first_audio"]) == {"plain", "lookahead"}


def test_bench_s3gen_quick_mode(tmp_path, tokenizer_path):
    """One S3Gen call per approximation on the tiny checkpoint: a fit per mode, exact is its
    own reference, and fewer flow-matching steps move the output (no timing asserted)."""
    data = _run_quick("bench_s3gen.py", tmp_path, tokenizer_path, "--threads", "1")
    assert data["environment"]["model_packages"]["torch"]
    modes = data["results"]["modes"]
    assert set(modes) == {"exact", "cfm_steps=5", "prompt=5s", "prompt=2.5s"}
    assert all(m["fit"] is not None for m in modes.values())
    assert set(modes["exact"]["mel_distance_to_exact"].values()) == {0.0}
    assert all(d > 0 for d in modes["cfm_steps=5"]["mel_distance_to_exact"].values())
    assert all(d > 0 for d in data["results"]["noise_floor_mel_distance"].values())
