from __future__ import annotations

import json

import pytest

from seqopt_core import (
    ConfigError,
    load_config,
    profile_names,
    resolve_config,
)
from seqopt_core.config import merge_config


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_profiles_load_and_resolve(seqopt_host):
    engines = {"baseline": "chatterbox", "rtx4090": "chatterbox", "multilingual": "chatterbox-multilingual",
               "turbo": "chatterbox-turbo"}
    assert set(profile_names()) == set(engines)
    for name in profile_names():
        loaded = load_config(profile=name)
        resolved = resolve_config(loaded, seqopt_host)
        assert set(resolved) == {"estimator", "splitter", "chunk_policy", "context_policy",
                                 "segment_context", "attention", "engine"}
        assert resolved["engine"].name == engines[name]
        # each profile counts with the estimator its engine declares exact for its model
        engine = seqopt_host.strategy("engine", engines[name]).spec
        assert resolved["estimator"].name == engine.estimator


def test_baseline_reproduces_chatterbox_streaming():
    c = load_config(profile="baseline").config
    assert c.chunk_policy.name == "fixed" and c.chunk_policy.options == {"chunk_size": 25}
    assert c.context_policy.name == "fixed" and c.context_policy.options == {"context_window": 50}
    assert c.attention.name == "eager"
    assert c.planner.max_tokens == 2048 == c.planner.target_tokens


def test_rtx4090_is_the_default_profile():
    c = load_config().config
    assert (c.planner.target_tokens, c.planner.max_tokens) == (96, 128)
    assert c.chunk_policy.name == "deadline" and c.context_policy.name == "adaptive"
    assert c.synthesis.costs == "auto"  # measured once per device, then cached
    assert c.attention.name == "sdpa_aligned"  # SDPA speed, alignment guard kept


def test_file_extends_profile_and_overrides_single_keys(tmp_path):
    path = write(tmp_path, "my.toml", """
extends = "rtx4090"
[planner]
target_tokens = 80
[context_policy]
options = { bands = { short_cap = 20, long_factor = 1.5, long_cap = 75 } }
""")
    c = load_config(path).config
    assert c.extends == "rtx4090"
    assert (c.planner.target_tokens, c.planner.max_tokens) == (80, 128)
    # same strategy name: options are merged into the profile's
    assert c.context_policy.name == "adaptive"
    assert c.context_policy.options == {"base_context": 50,
                                        "bands": {"short_cap": 20, "long_factor": 1.5, "long_cap": 75}}


def test_changing_a_slots_strategy_replaces_its_options(tmp_path):
    path = write(tmp_path, "my.toml", 'extends = "rtx4090"\n[chunk_policy]\nname = "fixed"\n')
    c = load_config(path).config
    assert c.chunk_policy.name == "fixed" and c.chunk_policy.options == {}


def test_json_is_accepted(tmp_path):
    path = write(tmp_path, "c.json", json.dumps({"extends": "baseline", "splitter": {"name": "regex"}}))
    assert load_config(path).config.attention.name == "eager"


def test_profile_argument_applies_under_a_file(tmp_path):
    path = write(tmp_path, "c.toml", "[planner]\ntarget_tokens = 50\n")
    c = load_config(path, profile="baseline").config
    assert c.planner.target_tokens == 50 and c.attention.name == "eager"


def test_file_without_extends_must_name_every_slot(tmp_path):
    path = write(tmp_path, "bare.toml", '[splitter]\nname = "regex"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "estimator: required key is missing" in msg


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[planner]\ntarget = 3\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "planner.target: unknown key" in str(err.value)


def test_target_above_max_is_rejected(tmp_path):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[planner]\ntarget_tokens = 500\n')
    with pytest.raises(ConfigError, match="must not exceed max_tokens"):
        load_config(path)


def test_unknown_strategy_lists_choices(tmp_path, seqopt_host):
    path = write(tmp_path, "c.toml", 'extends = "rtx4090"\n[splitter]\nname = "regexp"\n')
    with pytest.raises(ConfigError) as err:
        resolve_config(load_config(path), seqopt_host)
    msg = str(err.value)
    assert str(path) in msg and "splitter.name" in msg and "Did you mean 'regex'" in msg
    assert "Valid choices:" in msg and "nltk" in msg and "spacy" in msg


def test_strategy_options_are_validated_by_the_strategy(tmp_path, seqopt_host):
    path = write(tmp_path, "c.toml",
                 'extends = "rtx4090"\n[chunk_policy]\nname = "fixed"\noptions = { chunk = 3 }\n')
    with pytest.raises(ConfigError) as err:
        resolve_config(load_config(path), seqopt_host)
    msg = str(err.value)
    assert "chunk_policy.options.chunk: unknown key" in msg and "chunk_size" in msg


def test_bad_option_value(tmp_path, seqopt_host):
    path = write(tmp_path, "c.toml",
                 'extends = "rtx4090"\n[chunk_policy]\nname = "fixed"\noptions = { chunk_size = 0 }\n')
    with pytest.raises(ConfigError, match=r"chunk_policy.options.chunk_size: Input should be greater"):
        resolve_config(load_config(path), seqopt_host)


@pytest.mark.parametrize("content, message", [
    ("[planner\n", "invalid TOML"),
    ("{not json", "invalid JSON"),
    ('extends = "nope"\n', "unknown profile 'nope'"),
    ("extends = 3\n", "must be a profile name"),
])
def test_malformed_files(tmp_path, content, message):
    path = write(tmp_path, "c.toml", content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_and_invalid_utf8(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"description = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid UTF-8 at byte 15"):
        load_config(bad)


def test_merge_config_does_not_mutate_inputs():
    base = {"splitter": {"name": "regex", "options": {"a": 1}}, "planner": {"target_tokens": 1}}
    over = {"splitter": {"options": {"b": 2}}, "planner": {"max_tokens": 5}}
    merged = merge_config(base, over)
    assert merged["splitter"]["options"] == {"a": 1, "b": 2}
    assert merged["planner"] == {"target_tokens": 1, "max_tokens": 5}
    assert base["splitter"]["options"] == {"a": 1} and "max_tokens" not in base["planner"]


def test_old_synthesis_spelling_of_engine_settings_moves_to_engine_options(tmp_path):
    """``synthesis.voice`` and friends were the Chatterbox engine's settings before the
    engine became a slot: a file that still spells them so works, with a DeprecationWarning
    naming the new key, and the moved values are checked by the engine's options model."""
    path = write(tmp_path, "old.toml", 'extends = "rtx4090"\n[synthesis]\n'
                 'voice = "me.wav"\nmax_new_tokens = 300\nseed = 3\n')
    with pytest.warns(DeprecationWarning) as caught:
        loaded = load_config(path)
    message = " ".join(str(w.message) for w in caught if issubclass(w.category, DeprecationWarning))
    assert str(path) in message and "engine.options.voice" in message and "max_new_tokens" in message
    c = loaded.config
    assert c.engine.name == "chatterbox"
    assert c.engine.options == {"voice": "me.wav", "max_new_tokens": 300}
    assert c.synthesis.seed == 3 and "voice" not in c.synthesis.model_dump()

    one = write(tmp_path, "one.toml", 'extends = "rtx4090"\n[synthesis]\nmax_new_tokens = 300\n')
    with pytest.warns(DeprecationWarning, match=r"engine\.options\.max_new_tokens"):
        assert load_config(one).config.engine.options == {"max_new_tokens": 300}

    # a value moved from [synthesis] is still validated, under its new name
    bad = write(tmp_path, "bad.toml", 'extends = "rtx4090"\n[synthesis]\ntemperature = 0\n')
    with pytest.warns(DeprecationWarning, match=r"engine\.options\.temperature"):
        with pytest.raises(ConfigError) as err:
            load_config(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert "engine.options.temperature: must be a finite number above 0 and at most 5, got 0" in msg
