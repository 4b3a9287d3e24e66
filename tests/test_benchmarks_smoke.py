"""The benchmark scripts keep working (quick mode; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["bench_planning.py", "bench_estimator.py", "bench_attention.py"])
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


def test_bench_engine_quick_mode(tmp_path, tokenizer_path):
    """Both profiles on the tiny checkpoint, with their ratios and stages; ``--peer`` without
    the peer venv skips the peer, says how to make the venv, and the profiles still run."""
    missing = tmp_path / "no_peer_venv"
    data = _run_quick("bench_engine.py", tmp_path, tokenizer_path, "--peer", "--peer-venv", str(missing))
    peer = data["results"]["peer"]
    assert peer["status"] == "skipped"
    assert "make_peer_venv.sh" in peer["reason"] and str(missing) in peer["reason"]
    assert data["settings"]["contenders"] == ["baseline", "rtx4090"]
    summary = data["results"]["summary"]["100"]
    assert set(summary) == {"baseline", "rtx4090", "rtx4090_over_baseline"}
    for profile in ("baseline", "rtx4090"):
        run = data["results"]["runs"]["100"][profile][0]
        assert run["s3gen_calls"] == len(run["s3gen_call_seconds"]) > 0
        assert run["overlap_seconds"] >= 0.0 and run["t3_seconds"] > 0.0


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


def test_bench_s3gen_batched_quick_mode(tmp_path, tokenizer_path):
    """``--batched``: B rows in one S3Gen call against B calls, the same audio (no timing asserted)."""
    data = _run_quick("bench_s3gen.py", tmp_path, tokenizer_path, "--threads", "1", "--batched")
    sizes = data["results"]["batch_sizes"]
    assert set(sizes) == {"1", "2"} and data["settings"]["tokens"] == 10
    assert all(size["max_abs_difference"] < 1e-5 and size["batched_seconds"] > 0 for size in sizes.values())
    assert data["results"]["one_row"]["upstream_seconds"] > 0 and data["results"]["reference_preparation_seconds"] > 0


def test_bench_overlap_quick_mode(tmp_path, tokenizer_path):
    """rtx4090 in turn and overlapped on the tiny checkpoint (one torch thread): the same
    audio, and the overlap measured for both (no timing asserted)."""
    data = _run_quick("bench_overlap.py", tmp_path, tokenizer_path, "--threads", "1")
    results = data["results"]
    assert results["same_audio"] is True
    assert set(results["median"]) == {"in turn", "overlapped"}
    assert all(m["overlap"] >= 0 and m["t3_seconds"] > 0 for m in results["median"].values())
    assert results["cost_model"]["decode_fixed_seconds"] >= 0


def test_bench_serve_quick_mode(tmp_path, tokenizer_path):
    """The real `seqopt serve` on the tiny checkpoint with 1 and 2 clients: every request
    answered, each request's audio the same shared and one at a time, and the shared
    load's rows in one batch (no timing asserted)."""
    data = _run_quick("bench_serve.py", tmp_path, tokenizer_path, "--threads", "1")
    results = data["results"]
    assert results["audio_mismatches"] == [] and results["server_exit_code"] == 0
    loads = results["loads"]
    assert set(loads) == {"1 client(s), together", "2 client(s), together", "2 client(s), staggered"}
    for name, load in loads.items():
        modes = [m for m in ("shared", "one at a time") if m in load]
        assert all(load[m]["failed"] == [] and load[m]["audio_seconds"] > 0 for m in modes), name
    together = loads["2 client(s), together"]
    assert together["same_audio"] is True and together["one at a time"]["t3_batch_rows_max"] <= 1
    assert together["shared"]["ttfa_p50"] > 0 and together["shared"]["per_request"][1]["pieces"] >= 1


def test_bench_multilingual_quick_mode(tmp_path, tokenizer_path):
    """Upstream's generate and the multilingual profile on a tiny Multilingual checkpoint: both
    measured, and upstream's analyzer leaving three hooks on T3 per call, seqopt none."""
    data = _run_quick("bench_multilingual.py", tmp_path, tokenizer_path, "--threads", "1",
                      "--languages", "zh", "--tokens", "6", "--calls", "4", "--hook-tokens", "2")
    zh = data["results"]["languages"]["zh"]
    for side in ("upstream", "seqopt"):
        assert zh[side]["prefill_s"] > 0 and zh[side]["decode_step_s"] > 0 and zh[side]["audio_s"] > 0
    hooks = data["results"]["hooks_after_each_call"]
    assert hooks["seqopt"] == [0, 0, 0, 0]
    assert [b - a for a, b in zip(hooks["upstream"], hooks["upstream"][1:])] == [3, 3, 3]


def test_bench_turbo_quick_mode(tmp_path, tokenizer_path):
    """Turbo and the English rtx4090 on tiny checkpoints: both stream the same text with
    about the same number of speech tokens, and the ratios are there (no timing asserted)."""
    data = _run_quick("bench_turbo.py", tmp_path, tokenizer_path, "--threads", "1")
    summary = data["results"]["summary"]
    english, turbo = summary["rtx4090"], summary["turbo"]
    assert abs(english["speech_tokens"] - turbo["speech_tokens"]) <= turbo["segments"] + english["segments"]
    assert turbo["time_to_first_audio"] > 0 and 0 < turbo["s3gen_share"] < 1
    assert set(summary["turbo_over_rtx4090"]) >= {"time_to_first_audio", "rtf"}
