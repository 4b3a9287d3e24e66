"""The ``chatterbox-turbo`` engine on a tiny random-weight Turbo checkpoint.

What upstream's ``ChatterboxTurboTTS.generate`` does in two steps, compared step by step
with the same seeds: T3's tokens (``T3.inference_turbo``) against the engine's batch
rows, and S3Gen's audio (``s3gen.inference`` with the three silence tokens, 2 mean-flow
steps, then Perth's watermark) against the engine's decoder. Then the engine through
the pipeline: batched segments equal segments one at a time, exact token counts, and
options Turbo does not have refused. Random weights make noise, not speech.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from seqopt_core import ConfigError
from seqopt_core.engine import SegmentJob, segment_seed
from seqopt_core.types import Segment
from seqopt_plugins.chatterbox.pipeline import Pipeline
from seqopt_plugins.chatterbox.s3gen_batch import native_cpu_kernels
from seqopt_plugins.chatterbox.vocoder import SAMPLES_PER_TOKEN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = ("Turbo is the fast one. It has no guidance and one row per segment. "
        "Its vocoder takes two steps. That is why users pick it.")


def make_pipeline(checkpoint, **synthesis):
    return Pipeline.from_config(profile="turbo", overrides={
        "engine": {"options": {"checkpoint": str(checkpoint), "watermark": synthesis.pop("watermark", False),
                               "benchmark_tokens_per_text_token": 0.5}},
        "synthesis": {"seed": 4, **synthesis},
        "planner": {"target_tokens": 24, "max_tokens": 32},
        "chunk_policy": {"name": "fixed", "options": {"chunk_size": 8}}})


@pytest.fixture(scope="module")
def pipeline(tiny_turbo_checkpoint):
    return make_pipeline(tiny_turbo_checkpoint)


def _engine_tokens(engine, segment, seed, max_new):
    job = SegmentJob(0, segment, seed)
    engine = engine.configured(engine.options.model_copy(update={
        "benchmark_tokens_per_text_token": None, "max_new_tokens": max_new}))
    batch = engine.open_batch()
    with engine.work():
        steps = batch.step([job])
        while not steps[0].finished:
            steps = batch.step()
    batch.close()
    return engine, job, list(steps[0].finished.tokens)


def test_tokens_equal_upstream_inference_turbo(pipeline):
    engine = pipeline.engine
    segment = Segment(0, "Hello there, quick test.", 0, 24, 0, "end", "en")
    max_new = 20
    _, _, ours = _engine_tokens(engine, segment, seed=8, max_new=max_new)
    torch.manual_seed(segment_seed(8, 0))
    with torch.inference_mode():
        upstream = engine.t3.inference_turbo(
            t3_cond=copy.deepcopy(engine.conds.t3), text_tokens=engine.text_tokens(segment),
            temperature=engine.turbo_sampling.temperature, top_k=engine.turbo_sampling.top_k,
            top_p=engine.turbo_sampling.top_p, repetition_penalty=engine.turbo_sampling.repetition_penalty,
            max_gen_len=max_new - 1)[0].tolist()
    assert ours == upstream
    assert len(ours) == max_new


def test_audio_equals_upstream_s3gen_and_watermark(tiny_turbo_checkpoint):
    """The decoder on the whole segment in one chunk, watermark on (the default), against
    upstream's S3Gen call on the same tokens plus its three silence tokens, then Perth.

    Like every chunk of the engine's, the chunk is watermarked as it is made, and the
    crossfade tail held back for the next chunk (10 ms) is added after it at the
    segment's end, as it is."""
    from chatterbox.models.s3gen.const import S3GEN_SIL

    pipe = make_pipeline(tiny_turbo_checkpoint, watermark=True)
    engine = pipe.engine
    segment = Segment(0, "Hello there.", 0, 12, 0, "end", "en")
    engine, job, tokens = _engine_tokens(engine, segment, seed=2, max_new=14)
    tokens = [t for t in tokens if t < 6561]
    decoder = engine.decoder(job, crossfade_ms=10.0)
    with engine.work():
        decoded = decoder.decode(tokens, 0, last=True)
    assert len(decoded.audio) == (len(tokens) + 3) * SAMPLES_PER_TOKEN
    speech = torch.tensor(tokens + [S3GEN_SIL] * 3, dtype=torch.long)
    with torch.random.fork_rng(), native_cpu_kernels(torch.device("cpu")), torch.inference_mode():
        torch.manual_seed(decoder.vocoder.seed * 1_000_003 + 1)  # the vocoder's first call
        wav, _ = engine.s3gen.inference(speech_tokens=speech, ref_dict=copy.deepcopy(engine.conds.gen),
                                        n_cfm_timesteps=2)
    upstream = wav.squeeze(0).numpy()
    held = int(round(10.0 * 24000 / 1000))
    marked = engine.loaded.watermarker().apply_watermark(upstream[:-held], sample_rate=24000)
    expected = np.concatenate([np.asarray(marked, dtype=np.float32), upstream[-held:]])
    np.testing.assert_allclose(decoded.audio, expected, atol=1e-6, rtol=0)
    assert np.abs(decoded.audio).max() > 1e-3
    assert not np.allclose(decoded.audio[:-held], upstream[:-held], atol=1e-6)  # the watermark is there


def test_batched_segments_equal_segments_one_at_a_time(tiny_turbo_checkpoint):
    alone = make_pipeline(tiny_turbo_checkpoint, batch_size=1).synthesize(TEXT)
    batched = make_pipeline(tiny_turbo_checkpoint, batch_size=4).synthesize(TEXT)
    assert len(alone.metrics.segments) >= 3
    assert alone.metrics.segment_speech_tokens == batched.metrics.segment_speech_tokens
    np.testing.assert_allclose(batched.audio, alone.audio, atol=2e-4, rtol=0)


def test_each_segment_ends_with_the_silence_tokens(pipeline):
    result = pipeline.synthesize(TEXT)
    plan = pipeline.planner.plan(TEXT)
    pauses = sum(round(pipeline._pause_seconds(s) * 24000) for s in plan.segments)
    speech = sum(len([t for t in tokens if t < 6561]) for tokens in result.metrics.segment_speech_tokens)
    assert len(result.audio) == (speech + 3 * len(plan.segments)) * SAMPLES_PER_TOKEN + pauses


def test_planner_counts_what_t3_receives(pipeline, tiny_turbo_checkpoint):
    plan = pipeline.planner.plan(TEXT)
    assert plan.estimator == "chatterbox-turbo" and len(plan) >= 3
    for segment in plan.segments:
        assert segment.tokens == pipeline.engine.text_tokens(segment).size(-1) <= 32


@pytest.mark.parametrize("key, value", [("cfg_weight", 0.5), ("min_p", 0.05), ("exaggeration", 0.7)])
def test_options_turbo_does_not_have_are_refused(tiny_turbo_checkpoint, key, value):
    with pytest.raises(ConfigError, match=rf"{key} = {value}.*Turbo has no classifier-free guidance"):
        Pipeline.from_config(profile="turbo", overrides={"engine": {"options": {
            "checkpoint": str(tiny_turbo_checkpoint), key: value}}})


def test_the_engine_declares_it_does_not_use_the_attention_slot():
    from seqopt_core.plugins import PluginHost

    spec = PluginHost.discover().strategy("engine", "chatterbox-turbo").spec
    assert spec.uses_attention is False and spec.languages == ("en",) and spec.estimator == "chatterbox-turbo"
