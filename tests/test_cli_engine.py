"""`seqopt make-checkpoint` and `seqopt speak` on a tiny random checkpoint (noise, not speech)."""

from __future__ import annotations

import io
import json
import wave

import pytest
from click.testing import CliRunner

from seqopt_core.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_make_checkpoint_writes_the_released_layout(run, tmp_path, tokenizer_path):
    out = tmp_path / "ck"
    result = run("make-checkpoint", str(out), "--scale", "tiny", "--seed", "5",
                 "--tokenizer", str(tokenizer_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json", "conds.pt"])
    assert "noise, not speech" in result.output


def test_speak_writes_a_playable_wav_and_metrics(run, tmp_path, tiny_checkpoint):
    text = tmp_path / "text.txt"
    text.write_text("Hello there, this is the first paragraph of a test text. " * 3
                    + "\n\nGoodbye now.", encoding="utf-8")
    wav_path, metrics_path = tmp_path / "out.wav", tmp_path / "metrics.json"
    config = tmp_path / "fast.toml"  # benchmark mode: random weights never stop on their own
    config.write_text('extends = "rtx4090"\n[engine.options]\nbenchmark_tokens_per_text_token = 0.5\n')
    result = run("speak", "-f", str(text), "-o", str(wav_path), "--checkpoint", str(tiny_checkpoint),
                 "--seed", "1", "--metrics", str(metrics_path), "--config", str(config))
    assert result.exit_code == 0, result.output
    with wave.open(str(wav_path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        frames = w.getnframes()
    assert frames > 0
    metrics = json.loads(metrics_path.read_text())
    run_metrics = metrics["runs"][0]
    assert run_metrics["completed"] and run_metrics["segments"] == 3
    assert "TTFA" in result.output and "RTF" in result.output and "3 segments" in result.output
    assert run_metrics["audio_seconds"] == pytest.approx(frames / 24000, abs=1e-3)
    assert [s["index"] for s in metrics["segments"]] == [0, 1, 2]


def test_speak_streams_wav_to_stdout(run, tiny_checkpoint):
    result = run("speak", "Hi.", "-o", "-", "--checkpoint", str(tiny_checkpoint), "--seed", "2")
    assert result.exit_code == 0
    data = result.stdout_bytes
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) > 44
    with wave.open(io.BytesIO(data)) as w:  # a streaming header still parses
        assert w.getframerate() == 24000


def test_speak_raw_pcm(run, tiny_checkpoint):
    result = run("speak", "Hi.", "-o", "-", "--raw", "--checkpoint", str(tiny_checkpoint), "--seed", "2")
    assert result.exit_code == 0 and result.stdout_bytes[:4] != b"RIFF"
    assert len(result.stdout_bytes) % 2 == 0 and len(result.stdout_bytes) > 0


@pytest.mark.parametrize("args, message", [
    (["speak", "Hi.", "-o", "x.wav", "--checkpoint", "/nonexistent/ck"], "/nonexistent/ck"),
    (["speak", "   ", "-o", "x.wav"], "empty"),
    (["speak", "Hi.", "-o", "x.wav", "--device", "cuda:7"], "cuda:7"),
])
def test_speak_bad_input_is_a_clear_error(run, tmp_path, monkeypatch, tiny_checkpoint, args, message):
    monkeypatch.chdir(tmp_path)
    if "--checkpoint" not in args:
        args = [*args, "--checkpoint", str(tiny_checkpoint)]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_costs_measures_the_vocoder_and_a_t3_step(tiny_checkpoint, tmp_path):
    """seqopt costs: a fit of the vocoder's fixed and per-token seconds and a T3 step's,
    from the chunk events of one sentence at each chunk size, written as JSON."""
    out = tmp_path / "costs.json"
    result = CliRunner().invoke(main, ["costs", "--checkpoint", str(tiny_checkpoint), "--device", "cpu",
                                       "--sizes", "5,20", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "a vocoder call costs" in result.output and "a T3 step costs" in result.output
    data = json.loads(out.read_text())
    assert data["device"] == "cpu" and data["engine"]["random_weights"] and data["sizes"] == [5, 20]
    calls = data["calls"]
    assert {n for n, _ in calls} >= {5, 20}  # full chunks of both sizes were decoded
    assert data["vocoder"]["samples"] == len(calls)
    assert data["vocoder"]["fixed_seconds"] >= 0 and data["vocoder"]["per_token_seconds"] >= 0
    assert data["t3_step_seconds"] > 0 and data["t3_steps_measured"] > 0


@pytest.mark.parametrize(("sizes", "says"), [("10", "at least two different"), ("10,x", "comma-separated"),
                                            ("0,10", "between 1 and 2048")])
def test_costs_refuses_bad_sizes(sizes, says, tiny_checkpoint):
    result = CliRunner().invoke(main, ["costs", "--checkpoint", str(tiny_checkpoint), "--sizes", sizes])
    assert result.exit_code == 2 and says in result.output


def test_costs_save_is_the_cost_model_speak_plans_with(run, tiny_checkpoint, tmp_path, monkeypatch):
    """`seqopt costs --save` keeps the measurement as this device's cost model; `seqopt speak`
    with the default profile (deadline chunks) reads it instead of measuring."""
    monkeypatch.setenv("SEQOPT_CACHE_DIR", str(tmp_path / "cache"))
    saved = run("costs", "--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--sizes", "5,20", "--save")
    assert saved.exit_code == 0, saved.output
    assert "saved as this device's cost model:" in saved.output
    [path] = (tmp_path / "cache" / "costs").iterdir()
    model = json.loads(path.read_text())
    assert model["source"].startswith("seqopt costs --save") and model["t3_step_seconds"] > 0
    spoken = run("speak", "Hello there, a short test.", "-o", str(tmp_path / "a.wav"), "--checkpoint",
                 str(tiny_checkpoint), "--device", "cpu", "--seed", "1")
    assert spoken.exit_code == 0, spoken.output
    assert "costs: a vocoder call" in spoken.output and "(measured" not in spoken.output
    assert sorted((tmp_path / "cache" / "costs").iterdir()) == [path]
    assert json.loads(path.read_text()) == model  # read, not measured again (that would rewrite it)


def test_speak_with_a_missing_cost_file_says_what_to_do(run, tiny_checkpoint, tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text(f'extends = "rtx4090"\n[synthesis]\ncosts = "{tmp_path / "none.json"}"\n')
    result = run("speak", "Hello.", "-o", str(tmp_path / "a.wav"), "--checkpoint", str(tiny_checkpoint),
                 "--config", str(config))
    assert result.exit_code != 0 and "Traceback" not in result.output
    flat = " ".join(result.output.split())
    assert "synthesis.costs: cost file" in flat and "`seqopt costs -o costs.json`" in flat
    assert not (tmp_path / "a.wav").exists()
