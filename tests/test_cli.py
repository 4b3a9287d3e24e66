from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from seqopt_core.cli import main

TEXT = ("Dr. Smith arrived at 10:45 a.m. on Jan. 5. He said hello. " * 12).strip()


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_plan_json_shape(run):
    result = run("plan", TEXT, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"segments", "splitter", "estimator", "target_tokens", "max_tokens", "total_tokens",
                         "language"}
    assert data["splitter"] == "regex" and data["estimator"] == "chatterbox" and data["language"] == "en"
    assert (data["target_tokens"], data["max_tokens"]) == (96, 128)
    for seg in data["segments"]:
        assert set(seg) == {"index", "text", "start", "end", "tokens", "boundary"}
        assert TEXT[seg["start"]:seg["end"]] == seg["text"] and seg["tokens"] <= 128
    assert data["total_tokens"] == sum(s["tokens"] for s in data["segments"])


def test_plan_table(run):
    result = run("plan", TEXT)
    assert result.exit_code == 0
    assert "segments" in result.output and "boundary" in result.output and "estimator chatterbox" in result.output


def test_plan_from_file_and_stdin(run, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    from_file = json.loads(run("plan", "-f", str(path), "--json").output)
    from_stdin = json.loads(run("plan", "-f", "-", "--json", input=TEXT.encode()).output)
    assert from_file == from_stdin


def test_plan_options(run):
    data = json.loads(run("plan", TEXT, "--estimator", "ratio", "--target", "40", "--max", "60",
                          "--splitter", "nltk", "--json").output)
    assert data["estimator"] == "ratio" and data["splitter"] == "nltk" and data["max_tokens"] == 60
    assert all(s["tokens"] <= 60 for s in data["segments"])


def test_profiles(run):
    base = json.loads(run("plan", TEXT, "--profile", "baseline", "--json").output)
    assert len(base["segments"]) == 1 and base["max_tokens"] == 2048


def test_sentences(run):
    result = run("sentences", "Mr. Smith left. He came back!", "--json")
    data = json.loads(result.output)
    assert [s["text"] for s in data["sentences"]] == ["Mr. Smith left.", "He came back!"]
    assert data["sentences"][1]["start"] == 16
    assert "2 sentences" in run("sentences", "Mr. Smith left. He came back!").output


@pytest.mark.parametrize("args, message", [
    (["plan"], "no text given"),
    (["plan", "x", "-f", "y"], "not both"),
    (["plan", "-f", "/nonexistent/file.txt"], "does not exist"),
    (["plan", "   "], "empty"),
    (["plan", "a\x00b"], "U+0000"),
    (["plan", "hello", "--splitter", "regx"], "Did you mean 'regex'"),
    (["plan", "hello", "--config", "/nope.toml"], "does not exist"),
    (["plan", "Intro. " + "y" * 3000, "--estimator", "chatterbox"], "single word of 3000 characters"),
])
def test_bad_input_is_a_clear_error(run, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_invalid_utf8_file(run, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\u00e9 au lait.\n".encode("latin-1"))
    result = run("plan", "-f", str(path))
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.output and "offset 3" in result.output and "iconv" in result.output


def test_directory_is_not_a_file(run, tmp_path):
    result = run("plan", "-f", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.output


def test_large_file_plans(run, tmp_path):
    para = ("The committee met on Tuesday to review the budget, which had grown by 4.5% since "
            "last year. Members raised questions about travel costs! Would the plan pass? ")
    text = "\n\n".join([para * 8] * 4000)  # 5.1 MB, 4,000 paragraphs
    assert len(text.encode()) > 5_000_000
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    data = json.loads(run("plan", "-f", str(path), "--json").output)
    assert len(data["segments"]) > 10_000
    assert data["segments"][-1]["end"] <= len(text)
    assert all(s["tokens"] <= 128 for s in data["segments"])


def test_plugins_lists_every_slot(run):
    result = run("plugins", "--json")
    data = json.loads(result.output)
    assert set(data["strategies"]) == {"estimator", "splitter", "chunk_policy", "context_policy",
                                       "segment_context", "attention", "engine"}
    # every built-in strategy can run here, except FlashAttention without CUDA/flash-attn
    for slot in data["strategies"].values():
        for s in slot:
            if s["name"] == "flash_attention_2" and not s["enabled"]:
                assert "flash_attn" in s["reason"] or "CUDA" in s["reason"]
                assert s["install"]
            else:
                assert s["enabled"], s
    table = run("plugins").output
    assert "regex" in table and "enabled" in table


def test_plugins_lists_what_each_record_declares(run):
    """Capabilities are fields of the records, shown as declared (never probed)."""
    data = json.loads(run("plugins", "--json").output)["strategies"]

    def caps(slot, name):
        return next(s["capabilities"] for s in data[slot] if s["name"] == name)

    assert caps("attention", "sdpa_aligned") == {"provides_alignment": True, "keeps_all_layers": False,
                                                 "custom_kernel": True}
    assert caps("attention", "eager")["keeps_all_layers"] is True
    assert caps("attention", "sdpa") == {"provides_alignment": False, "keeps_all_layers": False,
                                         "custom_kernel": False}
    assert caps("segment_context", "voice") == {"independent_segments": True}
    assert caps("segment_context", "speech_tail") == {"independent_segments": False}
    assert caps("engine", "chatterbox") == {"batching": True, "uses_attention": True, "batched_decode": True,
                                          "concurrent_stages": True, "voices": True, "preflight": True}
    assert caps("chunk_policy", "deadline") == {"uses_playback": True}
    assert caps("chunk_policy", "fixed") == {"uses_playback": False}
    assert caps("splitter", "regex") == {}
    assert "preflight" in run("plugins").output  # the table shows them too (folded to its width)


def test_config_commands(run, tmp_path):
    shown = run("config", "show", "--profile", "baseline")
    assert shown.exit_code == 0 and "[chunk_policy]" in shown.output and '"fixed"' in shown.output
    path = tmp_path / "c.toml"
    path.write_text('extends = "rtx4090"\n[splitter]\nname = "spacy"\n')
    valid = run("config", "validate", str(path))
    assert valid.exit_code == 0 and "valid" in valid.output and "spacy" in valid.output
    path.write_text('extends = "rtx4090"\n[splitter]\nname = "spacey"\n')
    invalid = run("config", "validate", str(path))
    assert invalid.exit_code == 2 and "splitter.name" in invalid.output and str(path) in invalid.output
    schema = json.loads(run("config", "schema").output)
    assert "splitter" in schema["properties"]


def test_config_show_round_trips(run, tmp_path):
    from seqopt_core import load_config, plugin_host, resolve_config

    shown = run("config", "show").output
    path = tmp_path / "roundtrip.toml"
    path.write_text(shown, encoding="utf-8")
    again, default = load_config(path), load_config()
    # the same pipeline: every slot's strategy with the same options in effect
    assert resolve_config(again, plugin_host(again)) == resolve_config(default, plugin_host(default))
    strip = {slot: {"options"} for slot in ("estimator", "splitter", "chunk_policy", "context_policy",
                                             "segment_context", "attention", "engine")}
    assert again.config.model_dump(exclude=strip) == default.config.model_dump(exclude=strip)


def test_config_show_prints_defaults_of_options(run):
    shown = run("config", "show", "--profile", "rtx4090").output
    # options the profile does not write, shown with their defaults
    assert "split_on_newlines = false" in shown and "safety = 0.8" in shown and "prefer = \"latency\"" in shown
    assert "not set" in shown and "estimator.options.tokenizer" in shown


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "seqopt_core.cli", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "plan" in done.stdout
