"""``--language`` on the commands, and ``synthesis.language`` checked against the engine.

The Multilingual planning and speech run on a tiny random-weight Multilingual checkpoint
(its structural tokenizer files: counts are seqopt's structural vocabulary, not the
released one). Random weights make noise, not speech.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave

import pytest
from click.testing import CliRunner

from seqopt_core.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ZH = "你好世界。今天天气很好，我们去公园吧！明天见。"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_plan_counts_for_the_language_given(run, tiny_mtl_checkpoint):
    from seqopt_core.plugins import PluginHost

    result = run("plan", ZH, "--profile", "multilingual", "--language", "zh",
                 "--tokenizer", str(tiny_mtl_checkpoint), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["language"] == "zh" and data["estimator"] == "chatterbox-multilingual"
    exact = PluginHost.discover().create("estimator", "chatterbox-multilingual",
                                         {"tokenizer": str(tiny_mtl_checkpoint)}, language="zh")
    assert [s["tokens"] for s in data["segments"]] == [exact.count(s["text"]) for s in data["segments"]]
    other = json.loads(run("plan", ZH, "--profile", "multilingual", "--language", "ja",
                           "--tokenizer", str(tiny_mtl_checkpoint), "--json").output)
    assert other["language"] == "ja"


def test_a_language_the_engine_does_not_speak_names_the_flag_and_the_choices(run):
    result = CliRunner().invoke(main, ["plan", "Bonjour.", "--language", "fr"])
    assert result.exit_code != 0
    out = result.output
    assert "--language" in out and "'fr'" in out and "en (English)" in out
    assert "chatterbox-multilingual" in out  # where French is spoken


def test_sentences_checks_the_language_against_the_multilingual_engine(tiny_mtl_checkpoint):
    result = CliRunner().invoke(main, ["sentences", "Hola.", "--profile", "multilingual", "--language", "xx"])
    assert result.exit_code != 0
    assert "'xx'" in result.output and "sw (Swahili)" in result.output and "zh (Chinese)" in result.output
    ok = CliRunner().invoke(main, ["sentences", ZH, "--profile", "multilingual", "--language", "zh", "--json"])
    assert ok.exit_code == 0, ok.output
    assert len(json.loads(ok.output)["sentences"]) == 3


def test_a_badly_spelled_language_is_refused_before_anything_loads():
    result = CliRunner().invoke(main, ["plan", "Hola.", "--language", "español"])
    assert result.exit_code != 0
    assert "not a language code" in result.output and "--language" in result.output


def test_plugins_lists_each_engines_languages_and_estimator(run):
    data = json.loads(run("plugins", "--json").output)["strategies"]["engine"]
    engines = {e["name"]: e for e in data}
    assert engines["chatterbox"]["languages"] == ["en"]
    multilingual = engines["chatterbox-multilingual"]
    assert multilingual["languages"][0] == "en" and len(multilingual["languages"]) == 23
    assert multilingual["estimator"] == "chatterbox-multilingual"
    from chatterbox.mtl_tts import SUPPORTED_LANGUAGES  # what upstream's generate accepts

    assert sorted(multilingual["languages"]) == sorted(SUPPORTED_LANGUAGES)


def test_speak_in_chinese_on_the_real_cli_process(tmp_path, tiny_mtl_checkpoint):
    """The real process, as a user runs it: the multilingual profile, --language zh."""
    out = tmp_path / "zh.wav"
    config = tmp_path / "short.toml"  # random weights never stop: a fixed, short length
    config.write_text('extends = "multilingual"\n[engine.options]\nbenchmark_tokens_per_text_token = 0.5\n')
    proc = subprocess.run(
        [sys.executable, "-m", "seqopt_core", "speak", ZH, "-o", str(out), "--config", str(config),
         "--checkpoint", str(tiny_mtl_checkpoint), "--language", "zh", "--seed", "3", "--device", "cpu"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24000 and w.getnframes() > 0
    assert "noise, not speech" in proc.stderr


def test_compare_two_multilingual_configs_in_chinese(tmp_path, tiny_mtl_checkpoint):
    """`seqopt compare --language zh`: both configs plan and speak Chinese on one loaded
    Multilingual model, and the exact counts use the Multilingual estimator for zh."""
    text = tmp_path / "zh.txt"
    text.write_text(ZH, encoding="utf-8")
    fixed = tmp_path / "fixed.toml"
    fixed.write_text('extends = "multilingual"\n[chunk_policy]\nname = "fixed"\noptions = { chunk_size = 8 }\n',
                     encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "compare", "-f", str(text), "--profiles", "multilingual", "--config", str(fixed),
        "--checkpoint", str(tiny_mtl_checkpoint), "--language", "zh", "--tokens-per-text-token", "0.3",
        "--repeats", "1", "--no-warmup", "--no-plots", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "comparison.json").read_text())
    assert {s["contender"] for s in data["samples"]} == {"multilingual", "fixed"}
    assert all(s["exact_tokens"] > 0 for s in data["samples"])
