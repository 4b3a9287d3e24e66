"""The engine is a strategy slot: a third-party engine (``tests/sine_engine.py``: sine
tones, no torch) runs the whole pipeline, registered exactly as a plugin is.

Streaming covers every segment in order with its pause; synthesize equals stream;
batched equals sequential; look-ahead streams the first segment alone and then
batches; the engine's own options model validates ``[engine.options]``; the
engine is listed in the ``engine`` slot; and the whole run works with torch
unimportable.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sine_engine
from seqopt_core import ConfigError, Pipeline, PluginHost

TESTS = Path(__file__).resolve().parent
TEXT = ("The first one is short. Then a second sentence comes along here.\n\n"
        "A third follows it, after a paragraph. Number four is next; five is almost the end. "
        "Six closes the text.")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    host = PluginHost.discover()
    host.register(sine_engine, name="sine_engine")
    return host


def sine_pipeline(host: PluginHost, options: dict | None = None, **synthesis) -> Pipeline:
    overrides = {"engine": {"name": "sine", "options": options or {}},
                 "estimator": {"name": "ratio"},
                 "planner": {"target_tokens": 12, "max_tokens": 40},
                 "synthesis": {"seed": 7, **synthesis}}
    return Pipeline.from_config(overrides=overrides, host=host)


def streamed_audio(pipeline: Pipeline, text: str = TEXT) -> np.ndarray:
    return np.concatenate([c.audio for c in pipeline.stream(text)])


def test_the_sine_engine_fills_the_engine_slot(host):
    pipeline = sine_pipeline(host)
    assert isinstance(pipeline.engine, sine_engine.SineEngine)
    assert pipeline.engine.describe() == {"name": "sine", "device": "cpu", "random_weights": False}
    assert pipeline.attention is None  # the record says the engine does not use the attention slot
    assert pipeline.sample_rate == 24_000


def test_stream_covers_every_segment_in_order_with_pauses(host):
    pipeline = sine_pipeline(host, batch_size=1)
    plan = pipeline.planner.plan(TEXT)
    assert len(plan.segments) == 5
    chunks = list(pipeline.stream(TEXT))
    assert [c.segment.index for c in chunks] == sorted(c.segment.index for c in chunks)
    ends = [c for c in chunks if c.is_segment_end]
    assert [c.segment for c in ends] == list(plan.segments)
    pause_ms = pipeline.settings.pause_ms
    for seg in plan.segments:
        mine = [c for c in chunks if c.segment.index == seg.index]
        tokens = math.ceil(len(seg.text) * 0.5)
        assert sum(c.event.speech_tokens for c in mine) == tokens
        pause = 0 if seg.index == len(plan.segments) - 1 else int(24_000 * pause_ms[seg.boundary] / 1000)
        assert mine[-1].pause_samples == pause and all(c.pause_samples == 0 for c in mine[:-1])
        assert sum(len(c.audio) for c in mine) == tokens * sine_engine.SAMPLES_PER_TOKEN + pause
        if pause:
            assert not mine[-1].audio[-pause:].any()  # the pause is silence
    assert {s.boundary for s in plan.segments[:-1]} >= {"paragraph", "sentence"}
    metrics = pipeline.last_metrics
    assert metrics.generation.completed and metrics.generation.segments == 5
    assert [s.stopped_by for s in metrics.segments] == ["length_limit"] * 5


def test_synthesize_equals_stream(host):
    pipeline = sine_pipeline(host, batch_size=4)
    result = pipeline.synthesize(TEXT)
    assert result.sample_rate == 24_000 and result.audio.dtype == np.float32
    assert np.array_equal(result.audio, streamed_audio(pipeline))


def test_batched_equals_sequential(host):
    sequential = sine_pipeline(host, batch_size=1)
    batched = sine_pipeline(host, batch_size=4)
    plan = batched.planner.plan(TEXT)
    assert (sequential.batching(plan), batched.batching(plan)) == (1, 4)
    one, four = sequential.synthesize(TEXT), batched.synthesize(TEXT)
    assert one.metrics.segment_speech_tokens == four.metrics.segment_speech_tokens
    assert np.array_equal(one.audio, four.audio)
    assert np.array_equal(streamed_audio(sequential), streamed_audio(batched))


def test_seed_makes_runs_reproducible_and_different_seeds_differ(host):
    a = sine_pipeline(host, batch_size=4).synthesize(TEXT)
    b = sine_pipeline(host, batch_size=4).synthesize(TEXT)
    c = sine_pipeline(host, batch_size=4, seed=8).synthesize(TEXT)
    assert np.array_equal(a.audio, b.audio)
    assert a.metrics.segment_speech_tokens != c.metrics.segment_speech_tokens


def test_lookahead_streams_the_first_segment_alone_then_batches(host, monkeypatch):
    pipeline = sine_pipeline(host, batch_size=4)
    engine = pipeline.engine
    batches: list[list[list[int]]] = []  # per batch opened: the segment indexes of each step's rows
    open_batch = engine.open_batch

    def recording_open_batch(attention=None):
        batch = open_batch(attention)
        steps: list[list[int]] = []
        batches.append(steps)
        step = batch.step

        def recording_step(joining=()):
            out = step(joining)
            steps.append([s.job.segment.index for s in out])
            return out

        batch.step = recording_step
        return batch

    monkeypatch.setattr(engine, "open_batch", recording_open_batch)
    chunks = list(pipeline.stream(TEXT))
    assert {i for steps in batches[0] for i in steps} == {0}  # the first segment, alone
    assert all(len(rows) == 1 for rows in batches[0])
    rest = {i for b in batches[1:] for steps in b for i in steps}
    assert rest == {1, 2, 3, 4}
    assert max(len(rows) for b in batches[1:] for rows in b) > 1  # they shared steps
    assert [c.event.queue_seconds for c in chunks if c.segment.index == 0] == \
        [0.0] * sum(1 for c in chunks if c.segment.index == 0)
    assert np.array_equal(np.concatenate([c.audio for c in chunks]),
                          sine_pipeline(host, batch_size=1).synthesize(TEXT).audio)


@pytest.mark.parametrize(("options", "key"), [
    ({"pitch_hz": -5}, "pitch_hz"),
    ({"pich_hz": 300}, "pich_hz"),
    ({"oom_above_rows": "many"}, "oom_above_rows"),
])
def test_engine_options_are_validated_by_the_engines_own_model(host, options, key):
    with pytest.raises(ConfigError) as caught:
        sine_pipeline(host, options)
    message = str(caught.value)
    assert f"engine.options.{key}" in message
    assert "'sine'" in message or "sine" in message
    assert "Traceback" not in message


def test_good_engine_options_reach_the_engine(host):
    pipeline = sine_pipeline(host, {"pitch_hz": 330.0, "tokens_per_text_char": 0.25})
    assert pipeline.engine.options == sine_engine.SineOptions(pitch_hz=330.0, tokens_per_text_char=0.25)
    plan = pipeline.planner.plan(TEXT)
    assert pipeline.engine.speech_token_limit(plan.segments[0]) == math.ceil(len(plan.segments[0].text) / 4)


def test_a_loaded_engine_is_reused_with_the_configs_options(host):
    first = sine_pipeline(host)
    again = Pipeline.from_config(
        overrides={"engine": {"name": "sine", "options": {"pitch_hz": 440.0}},
                   "estimator": {"name": "ratio"}}, host=host, engine=first.engine)
    assert again.engine is not first.engine and again.engine.options.pitch_hz == 440.0
    same = Pipeline.from_config(overrides={"engine": {"name": "sine"}, "estimator": {"name": "ratio"}},
                                host=host, engine=first.engine)
    assert same.engine is first.engine


def test_the_sine_engine_is_listed_in_the_engine_slot(host):
    info = host.strategy("engine", "sine")
    assert (info.slot, info.provider, info.enabled) == ("engine", "sine_engine", True)
    assert "sine" in {s.name for s in host.strategies("engine")}
    assert "chatterbox" in {s.name for s in host.strategies("engine")}


def test_seqopt_plugins_lists_an_installed_sine_engine(tmp_path):
    """Installed as a distribution with an entry point, `seqopt plugins` lists it."""
    info = tmp_path / "seqopt_sine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqopt-sine\nVersion: 1.0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[seqopt]\nsine_engine = sine_engine\n", encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(TESTS), env.get("PYTHONPATH", "")])
    env.pop("SEQOPT_BLOCK_PLUGINS", None)
    env.pop("SEQOPT_DISABLE_PLUGIN_AUTOLOAD", None)
    done = subprocess.run([sys.executable, "-m", "seqopt_core.cli", "plugins", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    sine = [s for s in data["strategies"]["engine"] if s["name"] == "sine"]
    assert sine and sine[0]["provider"] == "sine_engine" and sine[0]["enabled"], data["strategies"]["engine"]
    plugin = next(p for p in data["plugins"] if p["name"] == "sine_engine")
    assert (plugin["status"], plugin["distribution"], plugin["builtin"]) == ("loaded", "seqopt-sine", False)


NO_TORCH_SCRIPT = textwrap.dedent('''
    import builtins, importlib, json, sys
    sys.modules["torch"] = None  # "import torch" now raises ImportError
    attempts = []
    _import, _import_module = builtins.__import__, importlib.import_module

    def watch(name):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)

    def guarded_import(name, *args, **kwargs):
        watch(name)
        return _import(name, *args, **kwargs)

    def guarded_import_module(name, package=None):
        watch(name)
        return _import_module(name, package)

    builtins.__import__, importlib.import_module = guarded_import, guarded_import_module

    import numpy as np
    import sine_engine
    from seqopt_core import Pipeline, PluginHost

    host = PluginHost.discover()
    host.register(sine_engine, name="sine_engine")
    text = ("The first one is short. Then a second sentence comes along here.\\n\\n"
            "A third follows it. Number four is next. Six closes the text.")
    out = {}
    for batch_size in (1, 4):
        pipeline = Pipeline.from_config(overrides={
            "engine": {"name": "sine"}, "estimator": {"name": "ratio"},
            "planner": {"target_tokens": 12, "max_tokens": 40},
            "synthesis": {"seed": 3, "batch_size": batch_size}}, host=host)
        streamed = np.concatenate([c.audio for c in pipeline.stream(text)])
        whole = pipeline.synthesize(text)
        assert np.array_equal(streamed, whole.audio)
        out[batch_size] = {"samples": int(len(whole.audio)), "segments": whole.metrics.generation.segments,
                           "checksum": float(np.abs(whole.audio).sum())}
    loaded = sorted(k for k, v in sys.modules.items()
                    if v is not None and (k == "torch" or k.startswith("torch.")))
    print(json.dumps({"runs": out, "attempts": attempts, "torch_modules": loaded,
                      "torch_entry": repr(sys.modules.get("torch", "absent"))}))
''')


def test_the_whole_sine_pipeline_runs_without_torch():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], "something tried to import torch"
    assert report["torch_modules"] == [] and report["torch_entry"] == "None"
    runs = report["runs"]
    assert runs["1"]["segments"] == runs["4"]["segments"] == 5
    assert runs["1"] == runs["4"]  # batched equals sequential there too
    assert runs["1"]["samples"] > 0


def test_rows_of_different_lengths_batch_as_they_run_alone(host):
    """With stop tokens the rows end at different steps: continuous batching still
    gives each segment the tokens it gets alone."""
    options = {"stop_probability": 0.15, "tokens_per_text_char": 1.0}
    one = sine_pipeline(host, options, batch_size=1).synthesize(TEXT)
    four = sine_pipeline(host, options, batch_size=4).synthesize(TEXT)
    stopped = [s.stopped_by for s in four.metrics.segments]
    assert "stop_token" in stopped
    assert stopped == [s.stopped_by for s in one.metrics.segments]
    assert four.metrics.segment_speech_tokens == one.metrics.segment_speech_tokens
    assert np.array_equal(four.audio, one.audio)
