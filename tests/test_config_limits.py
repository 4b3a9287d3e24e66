"""Values that would crash synthesis minutes later are refused when the config is
loaded, naming the key and the allowed range (issue 12, points 4 and 7)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from seqopt_core import ConfigError, PluginHost, load_config
from seqopt_core.config import (
    MAX_CONFIG_DEPTH,
    MAX_SEED,
    PlannerConfig,
    SynthesisConfig,
    build_loaded_config,
    read_config_file,
)
from seqopt_core.validation import MAX_ERROR_LINES
from seqopt_plugins.chatterbox.options import ChatterboxOptions, LengthGuardConfig

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def synthesis_error(tmp_path, table: str) -> str:
    path = write(tmp_path, "c.toml", f'extends = "rtx4090"\n[synthesis]\n{table}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, validate=False)
    msg = str(err.value)
    assert str(path) in msg
    return msg


def engine_error(tmp_path, table: str) -> str:
    """The refusal of ``table`` in ``[engine.options]`` (checked by the engine's options model)."""
    path = write(tmp_path, "c.toml", f'extends = "rtx4090"\n[engine.options]\n{table}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg
    return msg


# --- point 4: [synthesis] and [engine.options] ranges ------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "10001", "1e9", "inf", "-inf", "nan"])
def test_pause_ms_must_be_a_finite_number_from_0_to_10000(tmp_path, value):
    msg = synthesis_error(tmp_path, f"pause_ms = {{ sentence = {value} }}")
    assert "synthesis.pause_ms.sentence: must be a finite number from 0 to 10000 (milliseconds)" in msg


def test_pause_ms_limits_are_accepted(tmp_path):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[synthesis]\n'
                 "pause_ms = { paragraph = 10000, sentence = 0, word = 0.5 }\n")
    assert load_config(path, validate=False).config.synthesis.pause_ms["paragraph"] == 10000


@pytest.mark.parametrize("value", [str(MAX_SEED + 1), "2400000000", str(2**63), "-1"])
def test_seed_must_fit_what_the_engine_derives_from_it(tmp_path, value):
    msg = synthesis_error(tmp_path, f"seed = {value}")
    assert f"synthesis.seed: must be a whole number from 0 to {MAX_SEED}, got {value}" in msg


def test_largest_seed_keeps_the_vocoder_seed_within_64_bits():
    # The engine seeds a segment's vocoder with seed * 7919 + segment, and the vocoder
    # seeds torch with that * 1_000_003 + chunk; torch takes seeds below 2**64.
    engine = (REPO / "plugins" / "chatterbox" / "engine.py").read_text(encoding="utf-8")
    vocoder = (REPO / "plugins" / "chatterbox" / "vocoder.py").read_text(encoding="utf-8")
    assert "seed * 7919 + job.segment.index" in engine, "update MAX_SEED with the engine's formula"
    assert "self.seed * 1_000_003 + self._calls" in vocoder, "update MAX_SEED with the vocoder's"
    segments = chunks = 10**12
    assert (MAX_SEED * 7919 + segments) * 1_000_003 + chunks < 2**64
    assert 2_400_000_000 * 7919 * 1_000_003 >= 2**64  # what used to pass validation and crash
    assert SynthesisConfig(seed=MAX_SEED).seed == MAX_SEED and SynthesisConfig(seed=0).seed == 0


def test_largest_seed_is_accepted_by_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed((MAX_SEED * 7919 + 10**6) * 1_000_003 + 10**6)
    with pytest.raises(RuntimeError):  # what a seed of 2.4e9 led to
        torch.manual_seed(2_400_000_000 * 7919 * 1_000_003)


@pytest.mark.parametrize("key", ["speech_tokens_per_text_token", "benchmark_tokens_per_text_token"])
@pytest.mark.parametrize("value", ["inf", "nan", "0", "-2", "65"])
def test_tokens_per_text_token_ratios_are_bounded(tmp_path, key, value):
    msg = engine_error(tmp_path, f"{key} = {value}")
    assert (f"engine.options.{key}: must be a finite number above 0 and at most 64 "
            "(speech tokens per text token)") in msg


def test_length_guard_min_above_max_is_refused(tmp_path):
    msg = engine_error(tmp_path, "length_guard = { min_ratio = 9.0, max_ratio = 2.0 }")
    assert "engine.options.length_guard: min_ratio (9) must not exceed max_ratio (2)" in msg
    assert LengthGuardConfig(min_ratio=3, max_ratio=3).max_ratio == 3


@pytest.mark.parametrize("table, key", [
    ("length_guard = { max_ratio = inf }", "engine.options.length_guard.max_ratio"),
    ("length_guard = { min_ratio = nan }", "engine.options.length_guard.min_ratio"),
    ("temperature = inf", "engine.options.temperature"),
    ("cfg_weight = inf", "engine.options.cfg_weight"),
    ("repetition_penalty = 1e308", "engine.options.repetition_penalty"),
    ("crossfade_ms = nan", "synthesis.crossfade_ms"),
    ("exaggeration = nan", "engine.options.exaggeration"),
    ("max_new_tokens = 5000", "engine.options.max_new_tokens"),
])
def test_other_synthesis_numbers_name_key_and_range(tmp_path, table, key):
    msg = (synthesis_error if key.startswith("synthesis.") else engine_error)(tmp_path, table)
    line = next(line for line in msg.splitlines() if line.strip().startswith(key + ":"))
    assert "must be a " in line and (" from " in line or " above " in line), line


def _float_fields(model):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = typing.get_args(annotation) or (annotation,)
        if float in args or any(float in typing.get_args(a) for a in args if typing.get_args(a)):
            yield name


@pytest.mark.parametrize("model", [SynthesisConfig, ChatterboxOptions, LengthGuardConfig, PlannerConfig])
def test_no_float_setting_accepts_nan_or_infinity(model):
    fields = list(_float_fields(model))
    assert fields, model
    for name in fields:
        for bad in (math.inf, -math.inf, math.nan):
            value = {"sentence": bad} if name == "pause_ms" else bad
            with pytest.raises(ValueError, match="must be a finite number"):
                model(**{name: value})


def test_planner_values_name_the_whole_range():
    with pytest.raises(ValueError, match="must be a whole number from 1 to 2048"):
        PlannerConfig(target_tokens=3000, max_tokens=2048)


# --- point 4: aligned_heads against T3's structure ------------------------------------


@pytest.mark.parametrize("heads, shown", [
    ([[30, 0]], "(30, 0)"), ([[0, 16]], "(0, 16)"), ([[-1, 2]], "(-1, 2)"),
])
def test_aligned_heads_outside_t3_are_refused_at_load(tmp_path, seqopt_host, heads, shown):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[attention]\nname = "sdpa_aligned"\n'
                 f"options = {{ aligned_heads = {json.dumps(heads)} }}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, host=seqopt_host)
    msg = str(err.value)
    assert str(path) in msg and "attention.options.aligned_heads" in msg and shown in msg
    assert "layers 0 to 29 of heads 0 to 15" in msg


def test_aligned_heads_duplicates_and_last_head(seqopt_host):
    with pytest.raises(ConfigError, match=r"\(9, 2\) is listed more than once"):
        seqopt_host.create("attention", "eager", {"aligned_heads": [[9, 2], [9, 2]]})
    choice = seqopt_host.create("attention", "eager", {"aligned_heads": [[29, 15]]})
    assert choice.aligned_heads == ((29, 15),)


def test_t3_structure_matches_the_checkpoint_architecture():
    pytest.importorskip("torch")
    from seqopt_plugins import attention
    from seqopt_plugins.chatterbox.checkpoint import RELEASED_ARCH, TINY_ARCH

    assert (attention.T3_LAYERS, attention.T3_HEADS) == (RELEASED_ARCH.t3.num_layers,
                                                         RELEASED_ARCH.t3.num_heads)
    # the defaults exist in the tiny test checkpoint too
    assert all(layer < TINY_ARCH.t3.num_layers and head < TINY_ARCH.t3.num_heads
               for layer, head in attention.DEFAULT_ALIGNED_HEADS)


# --- point 7: nesting, unknown profiles, blocked plugins, capped messages -----------------


def _deep_files(tmp_path, n):
    return {
        "toml-array": write(tmp_path, "a.toml", "extends = 'rtx4090'\ndescription = " + "[" * n + "]" * n),
        "toml-inline": write(tmp_path, "i.toml", "x = " + "{a = " * n + "1" + "}" * n),
        "toml-tables": write(tmp_path, "t.toml", "extends = 'rtx4090'\n[splitter.options."
                             + ".".join(["a"] * n) + "]\nx = 1\n"),
        "json": write(tmp_path, "d.json", '{"extends": "rtx4090", "a": ' + "[" * n + "]" * n + "}"),
    }


@pytest.mark.parametrize("kind", ["toml-array", "toml-inline", "toml-tables", "json"])
def test_deeply_nested_config_is_a_config_error(tmp_path, kind):
    path = _deep_files(tmp_path, 1000)[kind]
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "nested" in msg and str(MAX_CONFIG_DEPTH) in msg


def test_deeply_nested_overrides_are_a_config_error():
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(ConfigError, match=r"overrides: splitter\.options\.a\.a\.a\.a\.\.\.: tables and arrays"):
        load_config(overrides={"splitter": {"options": deep}})
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(ConfigError, match="nested more than"):
        build_loaded_config({"extends": "rtx4090", "x": loop}, "code")


def test_nesting_at_the_limit_reaches_ordinary_validation(tmp_path):
    def nested(n):  # the file, [splitter] and its options are 3 levels already
        return write(tmp_path, f"c{n}.toml", "extends = 'rtx4090'\n[splitter]\noptions = { x = "
                     + "[" * n + "]" * n + " }\n")

    read_config_file(nested(MAX_CONFIG_DEPTH - 3))
    with pytest.raises(ConfigError, match="splitter.options.x: unknown key"):
        load_config(nested(MAX_CONFIG_DEPTH - 3))
    with pytest.raises(ConfigError, match=f"nested more than {MAX_CONFIG_DEPTH} levels"):
        read_config_file(nested(MAX_CONFIG_DEPTH - 2))


@pytest.mark.parametrize("kind", ["toml-array", "json"])
def test_config_validate_on_a_deep_file_prints_an_error_not_a_traceback(tmp_path, kind):
    path = _deep_files(tmp_path, 100_000)[kind]
    done = subprocess.run([sys.executable, "-m", "seqopt_core", "config", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    assert done.stderr.startswith("error: ") and "nested" in done.stderr


def test_unknown_extends_names_the_file(tmp_path):
    path = write(tmp_path, "mine.toml", 'extends = "rtx4909"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: extends: unknown profile 'rtx4909'")
    assert "Did you mean 'rtx4090'?" in msg and "baseline" in msg


def test_blocked_plugin_says_which_setting_blocked_it(monkeypatch):
    monkeypatch.delenv("SEQOPT_BLOCK_PLUGINS", raising=False)

    def info(host):
        return next(i for i in host.plugin_infos() if i.name == "nltk_splitter")

    by_config = info(PluginHost.discover(block=["nltk_splitter"], block_source="[plugins] block in my.toml"))
    assert by_config.status == "blocked" and by_config.blocked_by == ("[plugins] block in my.toml",)
    assert by_config.detail == "blocked by [plugins] block in my.toml"
    monkeypatch.setenv("SEQOPT_BLOCK_PLUGINS", "nltk_splitter")
    by_env = info(PluginHost.discover())
    assert by_env.blocked_by == ("SEQOPT_BLOCK_PLUGINS",) and by_env.detail == "blocked by SEQOPT_BLOCK_PLUGINS"
    both = info(PluginHost.discover(block=["nltk_splitter"], block_source="X"))
    assert both.blocked_by == ("SEQOPT_BLOCK_PLUGINS", "X")


def test_strategy_of_a_plugin_blocked_by_a_file_names_that_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SEQOPT_BLOCK_PLUGINS", raising=False)
    path = write(tmp_path, "blocky.toml", 'extends = "rtx4090"\n[plugins]\nblock = ["nltk_splitter"]\n'
                 '[splitter]\nname = "nltk"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"nltk_splitter (seqopt): blocked by [plugins] block in {path}" in msg
    assert f"remove it from [plugins] block in {path}" in msg
    assert "SEQOPT_BLOCK_PLUGINS" not in msg  # the variable is not set: it is not the cause


@pytest.mark.parametrize("table", ["planner", "splitter.options"])
def test_thousands_of_unknown_keys_give_a_capped_message(tmp_path, seqopt_host, table):
    keys = "\n".join(f"k{i} = {i}" for i in range(5000))
    path = write(tmp_path, "c.toml", f'extends = "rtx4090"\n[{table}]\n{keys}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, host=seqopt_host)
    msg = str(err.value)
    assert msg.count("unknown key") == MAX_ERROR_LINES
    assert f"... and {5000 - MAX_ERROR_LINES} more errors" in msg
    assert len(msg) < 4000


def test_a_huge_key_is_shortened_in_messages(tmp_path):
    path = write(tmp_path, "c.toml", f'extends = "rtx4090"\n[planner]\n{"k" * 100_000} = 1\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "unknown key" in str(err.value) and len(str(err.value)) < 1000
