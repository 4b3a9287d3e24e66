"""The streaming engine end to end on a tiny random-weight checkpoint, through the
real loading code and upstream's T3 and S3Gen. Random weights make noise: these
tests check mechanics (order, lengths, metrics, state), never audio quality."""

from __future__ import annotations

import copy
import ctypes
import gc

import numpy as np
import pytest
import torch

from seqopt_core import hookimpl
from seqopt_core.engine import AttentionSettings
from seqopt_core.errors import SynthesisError
from seqopt_core.playback import PlaybackClock
from seqopt_core.system import resident_bytes
from seqopt_plugins.chatterbox.engine import attention_implementation
from seqopt_plugins.chatterbox.pipeline import Pipeline
from seqopt_plugins.chatterbox.t3_stream import (
    LengthLimits,
    SamplingOptions,
    SpeechTokenLoop,
    text_token_tensor,
)
from seqopt_plugins.chatterbox.s3gen_batch import RenderedRow
from seqopt_plugins.chatterbox.vocoder import SAMPLES_PER_TOKEN, ChunkVocoder, decodable

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = ("The first sentence is short. The second one is a little longer than the first. "
        "Here comes the third.\n\nA new paragraph starts here, and it ends here.")


def make_pipeline(checkpoint, **options) -> Pipeline:
    options = {"checkpoint": str(checkpoint), "watermark": False,
               "benchmark_tokens_per_text_token": 0.5, **options}
    return Pipeline.from_config(profile="rtx4090", overrides={
        "engine": {"options": options}, "synthesis": {"seed": 3},
        "planner": {"target_tokens": 20, "max_tokens": 30}})


class FlakyBatch:
    """A batch from the engine whose steps first run ``fail(joining)`` (which may raise)."""

    def __init__(self, batch, fail):
        self.batch, self.fail = batch, fail

    @property
    def rows(self):
        return self.batch.rows

    def step(self, joining=()):
        self.fail(joining)
        return self.batch.step(joining)

    def close(self):
        self.batch.close()


def break_batches(engine, monkeypatch, fail):
    """Every batch ``engine`` opens from now on runs ``fail(joining)`` before each step."""
    real = engine.open_batch
    monkeypatch.setattr(engine, "open_batch", lambda attention=None: FlakyBatch(real(attention), fail))


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint):
    return make_pipeline(tiny_checkpoint)


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def seqopt_chunk_emitted(self, event):
        self.events.append(("chunk", event.segment_index))

    @hookimpl
    def seqopt_segment_finished(self, event):
        self.events.append(("segment", event.segment.index))

    @hookimpl
    def seqopt_generation_finished(self, event):
        self.events.append(("run", event.completed))


def test_stream_covers_every_segment_in_order(pipeline):
    recorder = Recorder()
    pipeline.host.register(recorder, name="recorder")
    try:
        chunks = list(pipeline.stream(TEXT))
    finally:
        pipeline.host._pm.unregister(recorder)
    plan = pipeline.planner.plan(TEXT)
    assert len(plan) >= 3
    seen = [c.segment.index for c in chunks]
    assert seen == sorted(seen) and set(seen) == set(range(len(plan)))
    assert [c.event.chunk_index for c in chunks] == list(range(len(chunks)))
    metrics = pipeline.last_metrics
    assert metrics.generation.completed and metrics.generation.segments == len(plan)
    for seg_event in metrics.segments:
        # benchmark mode: exactly 0.5 speech tokens per text token (rounded up)
        text_tokens = seg_event.segment.tokens
        assert seg_event.speech_tokens == -(-text_tokens // 2)
        assert seg_event.stopped_by == "benchmark_length"
    # audio: 960 samples per decodable token, plus the pauses between segments
    pauses = sum(c.pause_samples for c in chunks)
    audio = sum(len(c.audio) for c in chunks)
    decodable_tokens = (audio - pauses) // SAMPLES_PER_TOKEN
    assert (audio - pauses) % SAMPLES_PER_TOKEN == 0 and 0 < decodable_tokens <= metrics.speech_tokens
    assert pauses > 0  # sentence and paragraph boundaries get their pause
    assert chunks[-1].pause_samples == 0
    g = metrics.generation
    assert g.time_to_first_audio is not None and 0 < g.time_to_first_audio <= g.wall_seconds
    assert g.audio_seconds == pytest.approx(audio / 24000)
    assert g.peak_memory_bytes > 0 and g.rtf > 0
    assert metrics.sequence.optimized_segments == len(plan)
    assert [e for e in recorder.events if e[0] == "run"] == [("run", True)]
    assert [e[1] for e in recorder.events if e[0] == "segment"] == list(range(len(plan)))


def test_first_chunk_follows_the_chunk_policy(pipeline):
    chunks = list(pipeline.stream(TEXT))
    # rtx4090: the deadline policy's first chunk, from the costs measured on this machine
    segment = pipeline.last_metrics.segments[0]
    window = pipeline.context_policy.context_window(segment.segment.tokens, 0, 0)
    state = PlaybackClock(pipeline.costs).state(segment.segment.tokens, 0, 0, context_tokens=0,
                                                context_window=window)
    assert chunks[0].event.speech_tokens == min(pipeline.chunk_policy.plan_chunk(state), segment.speech_tokens)


def test_synthesize_returns_the_whole_waveform(pipeline):
    result = pipeline.synthesize(TEXT)
    streamed = np.concatenate([c.audio for c in pipeline.stream(TEXT)])
    assert result.sample_rate == 24000 and result.audio.dtype == np.float32
    assert np.isfinite(result.audio).all()
    np.testing.assert_array_equal(result.audio, streamed)  # same seed, same audio


def test_our_token_loop_equals_upstream_t3_inference(pipeline):
    """Splitting off, same attention implementation, same seed: same speech tokens."""
    engine = pipeline.engine
    t3 = engine.t3
    text = text_token_tensor(engine.tokenizer, "Hello there, how are you today?", cfg=True,
                             device=t3.device, start_token=t3.hp.start_text_token,
                             stop_token=t3.hp.stop_text_token)
    sampling = SamplingOptions()
    for impl in ("sdpa", "eager"):
        with attention_implementation(t3, impl):
            torch.manual_seed(1234)
            upstream = t3.inference(t3_cond=copy.deepcopy(engine.conds.t3), text_tokens=text,
                                    max_new_tokens=40, temperature=sampling.temperature,
                                    top_p=sampling.top_p, min_p=sampling.min_p,
                                    repetition_penalty=sampling.repetition_penalty,
                                    cfg_weight=sampling.cfg_weight)[0].tolist()
            torch.manual_seed(1234)
            ours = list(SpeechTokenLoop(t3).tokens(copy.deepcopy(engine.conds.t3), text,
                                                   sampling=sampling, limits=LengthLimits(40)))
        # upstream also returns the stop token when it samples one; we stop before it
        assert ours == [t for t in upstream if t != t3.hp.stop_speech_token][: len(ours)]
        assert len(ours) == len(upstream) or upstream[len(ours)] == t3.hp.stop_speech_token


def test_benchmark_mode_and_length_limits(pipeline):
    engine = pipeline.engine
    assert engine.length_limits(10).ignore_stop and engine.length_limits(10).max_new_tokens == 5
    derived = copy.copy(engine)
    derived.options = engine.options.model_copy(update={"benchmark_tokens_per_text_token": None})
    limits = derived.length_limits(10)
    assert not limits.ignore_stop and limits.max_new_tokens == 10 * 6 + 50
    fixed = copy.copy(engine)
    fixed.options = derived.options.model_copy(update={"max_new_tokens": 1000})
    assert fixed.length_limits(10).max_new_tokens == 1000


def test_text_over_the_model_limit_completes_in_order(tiny_checkpoint):
    sentence = "This sentence is one of many that make a text longer than the model takes. "
    text = sentence * 120  # about 2,600 exact tokens, more than T3's 2,048
    pipe = make_pipeline(tiny_checkpoint, benchmark_tokens_per_text_token=0.05)
    pipe.planner.settings = type(pipe.planner.settings)(target_tokens=96, max_tokens=128)
    plan = pipe.planner.plan(text)
    assert plan.total_tokens > 2048
    seen = [c.segment.index for c in pipe.stream(text)]
    assert sorted(set(seen)) == list(range(len(plan))) and seen == sorted(seen)
    assert pipe.last_metrics.generation.completed


def _hook_count(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def test_closing_early_releases_state(tiny_checkpoint):
    # a fresh model: upstream's own T3.inference (used in another test) makes
    # transformers install output-capturing hooks that stay; seqopt's loop adds none
    pipeline = make_pipeline(tiny_checkpoint)
    t3 = pipeline.engine.t3
    before_impl = t3.tfmr.config._attn_implementation
    before_hooks = _hook_count(t3)
    stream = pipeline.stream(TEXT)
    next(stream)
    stream.close()
    g = pipeline.last_metrics.generation
    assert g.completed is False and g.chunks == 1
    assert t3.tfmr.config._attn_implementation == before_impl
    assert _hook_count(t3) == before_hooks == 0


def _trimmed_resident_mb() -> float:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: hand freed memory back first
    except (OSError, AttributeError):
        pass
    return (resident_bytes() or 0) / 2**20


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_many_generations_leave_nothing_behind(pipeline):
    """Watermark off (this module's pipeline); the watermark-on variant, with the
    resident set measured over the second half, is in ``test_engine_memory.py``."""
    t3 = pipeline.engine.t3
    text = "Short one. Another one."
    list(pipeline.stream(text))  # warm up caches
    tensors, hooks = _live_tensors(), _hook_count(t3)
    middle = None
    for i in range(50):
        for _chunk in pipeline.stream(text):
            pass
        if i == 24:
            middle = _trimmed_resident_mb()
    assert _hook_count(t3) == hooks
    assert _live_tensors() <= tensors + 5  # nothing accumulates per generation
    assert _trimmed_resident_mb() - middle < 10.0  # MB; flat (about 0.1 MB) without the watermark


def test_attention_backends_switch_and_restore(tiny_checkpoint):
    p = make_pipeline(tiny_checkpoint)
    # transformers' own eager attention, without the alignment guard
    eager = Pipeline(p.planner, p.engine, chunk_policy=p.chunk_policy, context_policy=p.context_policy,
                     segment_context=p.segment_context, attention=AttentionSettings("eager", "eager"),
                     host=p.host, settings=p.settings)
    t3 = eager.engine.t3
    before = t3.tfmr.config._attn_implementation
    used = set()
    hook = t3.tfmr.register_forward_pre_hook(
        lambda module, args: used.add(module.config._attn_implementation))
    try:
        a = eager.synthesize("Hello there.").audio
    finally:
        hook.remove()
    assert used == {"eager"} != {before}  # it ran with eager attention ...
    assert t3.tfmr.config._attn_implementation == before  # ... and put the previous one back
    sdpa = make_pipeline(tiny_checkpoint)
    b = sdpa.synthesize("Hello there.").audio
    assert len(a) == len(b)  # same tokens count; values may differ in the last bits


def test_failed_segment_is_retried_then_split(pipeline, monkeypatch):
    calls = []

    def flaky(joining):  # a segment streamed alone joins a one-row batch of its own
        if joining:
            calls.extend(job.segment.text for job in joining)
            if len(calls) <= 2:  # the first try and its retry fail
                raise RuntimeError("simulated out of memory")

    break_batches(pipeline.engine, monkeypatch, flaky)
    text = "One two three four, five six seven."
    assert len(pipeline.planner.plan(text)) == 1
    chunks = list(pipeline.stream(text))
    assert len(calls) >= 4  # two failures, then at least two smaller pieces
    assert all(c.segment.index == 0 for c in chunks) and chunks[-1].is_segment_end
    pieces = calls[2:]
    assert " ".join(pieces).replace(" ", "") == text.replace(" ", "")  # nothing skipped


def test_failure_that_cannot_be_split_names_the_segment(pipeline, monkeypatch):
    def broken(joining):
        raise RuntimeError("boom")

    break_batches(pipeline.engine, monkeypatch, broken)
    with pytest.raises(SynthesisError) as err:
        list(pipeline.stream("Hi."))
    assert "segment 0" in str(err.value) and "'Hi.'" in str(err.value) and "boom" in str(err.value)
    assert pipeline.last_metrics.generation.completed is False


def fake_render(offsets):
    """Stands in for S3Gen: each token renders as 960 samples of a sine whose phase
    starts at the next of ``offsets`` (samples)."""

    def render(s3gen, rows):
        out = []
        for row in rows:
            n = len(row.tokens) * SAMPLES_PER_TOKEN
            t = np.arange(n, dtype=np.float64) + (offsets.pop(0) if offsets else 0)
            audio = (0.5 * np.sin(2 * np.pi * 220 * t / 24000)).astype(np.float32)
            out.append(RenderedRow(audio, torch.zeros(1, 1, n), 0.0))
        return out

    return render


def test_vocoder_seams_are_crossfaded_and_lengths_exact(monkeypatch):
    from seqopt_plugins.chatterbox import vocoder as vocoder_module

    offsets: list[int] = []
    monkeypatch.setattr(vocoder_module, "render_rows", fake_render(offsets))
    monkeypatch.setattr(vocoder_module, "prepared_reference", lambda s3gen, ref_dict: None)
    vocoder = ChunkVocoder(None, {}, crossfade_ms=10)
    out, decoded = [], 0
    for size in (10, 25, 25, 7):
        context = min(5, decoded)
        offsets.append((decoded - context) * SAMPLES_PER_TOKEN)  # render with continuous phase
        out.append(vocoder.decode(list(range(size)), context))
        decoded += size
    out.append(vocoder.flush())
    audio = np.concatenate(out)
    assert len(audio) == decoded * SAMPLES_PER_TOKEN
    expected = 0.5 * np.sin(2 * np.pi * 220 * np.arange(len(audio)) / 24000)
    # both sides of each crossfade render the same signal, so the join is seamless
    assert np.max(np.abs(audio - expected)) < 1e-3


def test_decodable_drops_special_tokens():
    assert decodable([0, 6560, 6561, 6562, 8000, 5]) == [0, 6560, 5]


def test_generation_event_carries_run_metrics(pipeline):
    seen = []

    class Watch:
        @hookimpl
        def seqopt_generation_finished(self, event):
            seen.append(event)

    watcher = Watch()
    pipeline.host.register(watcher, name="watch")
    try:
        list(pipeline.stream(TEXT))
    finally:
        pipeline.host._pm.unregister(watcher)
    extra = seen[0].extra
    assert extra["speech_tokens"] == pipeline.last_metrics.speech_tokens
    assert extra["sequence.optimized_segments"] == len(pipeline.last_metrics.segments)
    assert extra["speech_tokens_per_second"] > 0


def test_speech_tail_primes_the_next_segment(tiny_checkpoint):
    pipe = Pipeline.from_config(profile="rtx4090", overrides={
        "engine": {"options": {"checkpoint": str(tiny_checkpoint), "watermark": False,
                               "benchmark_tokens_per_text_token": 0.5}},
        "synthesis": {"seed": 3},
        "planner": {"target_tokens": 20, "max_tokens": 30},
        "segment_context": {"name": "speech_tail", "options": {"tokens_per_segment": 4}}})
    engine = pipe.engine
    primes = []
    real = engine.t3_conditionals

    def spy(prompt_tokens):
        primes.append(list(prompt_tokens or []))
        return real(prompt_tokens)

    engine.t3_conditionals = spy
    list(pipe.stream(TEXT))
    segments = pipe.last_metrics.segments
    assert primes[0] == [] and len(primes) == len(segments)
    # the prompt for segment k is the last 4 speech tokens of segment k-1
    cond = real(primes[1])
    voice = engine.conds.t3.cond_prompt_speech_tokens
    assert cond.cond_prompt_speech_tokens.shape == voice.shape
    assert cond.cond_prompt_speech_tokens[0, -4:].tolist() == primes[1]
    assert cond.cond_prompt_speech_tokens[0, :-4].tolist() == voice[0, 4:].tolist()


def test_released_weights_are_fetched_from_the_hub(tiny_checkpoint, monkeypatch):
    """No network here: stand in for hf_hub_download and check what is asked for."""
    import huggingface_hub

    from seqopt_plugins.chatterbox import engine as engine_mod

    asked = []

    def fake_download(repo_id, filename, **kw):
        asked.append((repo_id, filename))
        return str(tiny_checkpoint / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    folder = engine_mod.download_released_checkpoint()
    assert folder == tiny_checkpoint
    assert asked == [("ResembleAI/chatterbox", name) for name in
                     ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json", "conds.pt")]


def test_a_shared_engine_takes_each_configs_synthesis_settings(pipeline, tiny_checkpoint):
    """Reusing loaded models must not carry one profile's settings into another."""
    other = Pipeline.from_config(profile="baseline", overrides={
        "engine": {"options": {"checkpoint": str(tiny_checkpoint), "watermark": False,
                               "benchmark_tokens_per_text_token": 0.5}},
        "synthesis": {"seed": 9}}, engine=pipeline.engine)
    assert other.engine.t3 is pipeline.engine.t3  # same weights, loaded once
    assert other.settings.crossfade_ms == 0.0 and other.settings.seed == 9
    assert other.scheduler.crossfade_ms == 0.0  # what its segments are decoded with
    assert pipeline.settings.crossfade_ms == 10.0 and pipeline.scheduler.crossfade_ms == 10.0
    assert pipeline.settings.seed == 3


def test_aligned_heads_the_checkpoint_lacks_fail_before_synthesis(tiny_checkpoint):
    from seqopt_core import ConfigError
    from seqopt_plugins.chatterbox.checkpoint import TINY_ARCH

    layers = TINY_ARCH.t3.num_layers
    # valid for the released T3 (so the config loads), beyond the tiny checkpoint's layers
    with pytest.raises(ConfigError, match=rf"aligned_heads: .*\({layers}, 0\).*{layers} layers"):
        Pipeline.from_config(profile="rtx4090", overrides={
            "engine": {"options": {"checkpoint": str(tiny_checkpoint), "watermark": False}},
            "attention": {"options": {"aligned_heads": [[layers, 0]]}}})
