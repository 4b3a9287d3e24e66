"""Batched S3Gen (``ChatterboxEngine.decode_batch``, :mod:`seqopt_plugins.chatterbox.s3gen_batch`)
on the tiny random checkpoint: one row is upstream's ``s3gen.inference`` bit for bit,
a batch is each chunk decoded alone within float32 tolerance, and every decoder's
state moves on as it does alone. Random weights make noise: only equalities and
distances are checked, never quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqopt_core.engine import DecodeCall, SegmentJob
from seqopt_core.types import Segment
from seqopt_plugins.chatterbox import engine as engine_module
from seqopt_plugins.chatterbox import s3gen_batch
from seqopt_plugins.chatterbox.engine import ChatterboxEngine
from seqopt_plugins.chatterbox.options import ChatterboxOptions
from seqopt_plugins.chatterbox.s3gen_batch import (RenderedRow, RenderRow, native_cpu_kernels, prepared_reference,
                                                  render_rows)
from seqopt_plugins.chatterbox.vocoder import SAMPLES_PER_TOKEN, SPEECH_VOCAB

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: float32 tolerance on audio (peaks near 0.07 on the tiny checkpoint; batched rows
#: differ from alone by about 1e-7: other matrix shapes, other summation order).
ATOL = 1e-5
#: Per decoder: the chunks (new tokens, context) it decodes, one per round.
SCHEDULES = (
    ((10, 0), (25, 5), (7, 5)),
    ((4, 0), (30, 4), (12, 8)),
    ((16, 0), (9, 6), (20, 3)),
    ((22, 0), (3, 3), (15, 10)),
)


@pytest.fixture(scope="module")
def engines(tiny_checkpoint):
    """Engines on one loaded tiny checkpoint, by a name for their options."""
    base = ChatterboxEngine.load(ChatterboxOptions(checkpoint=str(tiny_checkpoint), watermark=False))
    variants = {"plain": {}, "watermark": {"watermark": True},
                "first_chunk": {"s3gen_prompt_seconds": 0.8, "s3gen_short_prompt": "first_chunk"},
                "carry": {"s3gen_carry_source": True}}
    return {name: base.configured(ChatterboxOptions(checkpoint=str(tiny_checkpoint), **{"watermark": False, **opts}))
            for name, opts in variants.items()}


def _tokens(index: int, count: int, offset: int) -> list[int]:
    rng = np.random.default_rng(1000 * index + offset)
    return rng.integers(0, SPEECH_VOCAB, size=count).tolist()


def _decoders(engine: ChatterboxEngine, count: int, seed: int | None = 7):
    return [engine.decoder(SegmentJob(i, Segment(i, "x", 0, 1, 1, "end"), seed), crossfade_ms=10.0)
            for i in range(count)]


def _calls(decoders, round_index: int, schedules=SCHEDULES) -> list[DecodeCall]:
    calls = []
    for i, (decoder, schedule) in enumerate(zip(decoders, schedules)):
        new, context = schedule[round_index]
        last = round_index == len(schedule) - 1
        calls.append(DecodeCall(decoder, tuple(_tokens(i, new, round_index)), context, last))
    return calls


def _state(decoder) -> tuple:
    vocoder = decoder.vocoder
    return (tuple(vocoder._decoded), vocoder._calls, vocoder.ref_dict is decoder.later_reference,
            vocoder._tail.copy())


def _upstream_render(engine):
    """A stand-in for :func:`render_rows` that runs upstream's ``s3gen.inference`` on each
    row alone, seeded with the row's seed (the reference the batched path must meet)."""
    references = [engine.conds.gen, *engine._references]  # the first and later chunks' references
    by_prepared = {id(prepared_reference(engine.s3gen, ref)): ref for ref in references}

    def render(s3gen, rows):
        out = []
        for row in rows:
            with torch.random.fork_rng(), torch.inference_mode(), native_cpu_kernels(s3gen.device):
                torch.manual_seed(row.seed)
                wav, source = s3gen.inference(speech_tokens=torch.tensor(list(row.tokens)),
                                              ref_dict=dict(by_prepared[id(row.reference)]),
                                              n_cfm_timesteps=row.n_timesteps)
            out.append(RenderedRow(wav.squeeze(0).numpy(), source, 0.0))
        return out

    return render


def _one_at_a_time(engine, schedules=SCHEDULES, *, upstream=True):
    """Each chunk decoded alone, in order; by upstream's ``s3gen.inference`` unless
    ``upstream`` is false (then by the engine's own one-row path)."""
    decoders = _decoders(engine, len(schedules))
    audio, states = [], []
    with pytest.MonkeyPatch.context() as patch, engine.work():
        if upstream:
            patch.setattr(engine_module, "render_rows", _upstream_render(engine))
        for r in range(len(schedules[0])):
            audio.append([call.decoder.decode(call.tokens, call.context, last=call.last).audio
                          for call in _calls(decoders, r, schedules)])
            states.append([_state(d) for d in decoders])
    return audio, states


def _batched(engine, schedules=SCHEDULES):
    decoders = _decoders(engine, len(schedules))
    audio, states, results = [], [], []
    with engine.work():
        for r in range(len(schedules[0])):
            out = engine.decode_batch(_calls(decoders, r, schedules))
            results.extend(out)
            audio.append([o.audio for o in out])
            states.append([_state(d) for d in decoders])
    return audio, states, results


def _assert_same(sequential, batched):
    (seq_audio, seq_states), (bat_audio, bat_states) = sequential, batched
    for seq_round, bat_round in zip(seq_audio, bat_audio, strict=True):
        for a, b in zip(seq_round, bat_round, strict=True):
            assert len(a) == len(b)
            np.testing.assert_allclose(b, a, rtol=0, atol=ATOL)
    for seq_round, bat_round in zip(seq_states, bat_states, strict=True):
        for (decoded, calls, later, tail), (decoded2, calls2, later2, tail2) in zip(seq_round, bat_round):
            assert (decoded, calls, later) == (decoded2, calls2, later2)
            np.testing.assert_allclose(tail2, tail, rtol=0, atol=ATOL)


@pytest.fixture
def plain_sequential(engines, one_torch_thread):
    return _one_at_a_time(engines["plain"])


def test_one_row_is_upstreams_inference_bit_for_bit(engines, one_torch_thread):
    """Same kernels as the vocoder runs (no oneDNN on a CPU), same seed: same samples."""
    engine = engines["plain"]
    s3gen = engine.s3gen
    short = engine.s3gen_reference(0.8)
    for tokens, ref, steps in ((_tokens(0, 30, 0), engine.conds.gen, None), (_tokens(1, 13, 0), short, 4)):
        with torch.random.fork_rng(), torch.inference_mode(), native_cpu_kernels(s3gen.device):
            torch.manual_seed(99)
            upstream, _ = s3gen.inference(speech_tokens=torch.tensor(tokens), ref_dict=dict(ref),
                                          n_cfm_timesteps=steps)
        (ours,) = render_rows(s3gen, [RenderRow(tokens, prepared_reference(s3gen, ref), seed=99, n_timesteps=steps)])
        np.testing.assert_array_equal(ours.audio, upstream.squeeze(0).numpy())


def test_a_chunk_decoded_alone_is_upstreams_audio_trimmed(engines, one_torch_thread):
    """A first chunk (no context) is upstream's waveform for its tokens, less the held-back
    crossfade tail, which the last chunk hands out: the same samples exactly."""
    engine = engines["plain"]
    (decoder,) = _decoders(engine, 1)
    tokens = _tokens(3, 12, 0)
    with torch.random.fork_rng(), torch.inference_mode(), native_cpu_kernels(engine.s3gen.device):
        torch.manual_seed(decoder.vocoder.seed * 1_000_003 + 1)  # the vocoder's first call
        upstream, _ = engine.s3gen.inference(speech_tokens=torch.tensor(tokens), ref_dict=dict(engine.conds.gen))
    with engine.work():
        out = engine.decode_batch([DecodeCall(decoder, tuple(tokens), 0, True)])[0]
    np.testing.assert_array_equal(out.audio, upstream.squeeze(0).numpy()[: 12 * SAMPLES_PER_TOKEN])
    assert 0 < out.vocoder_seconds <= out.decode_seconds


def test_batched_chunks_equal_one_at_a_time_over_successive_rounds(engines, plain_sequential):
    batched = _batched(engines["plain"])
    _assert_same(plain_sequential, batched[:2])
    # each round's audio has exactly SAMPLES_PER_TOKEN per new token over the segment
    totals = [sum(len(r[i]) for r in batched[0]) for i in range(len(SCHEDULES))]
    assert totals == [sum(n for n, _ in s) * SAMPLES_PER_TOKEN for s in SCHEDULES]
    assert all(0 < r.vocoder_seconds <= r.decode_seconds for r in batched[2])


def test_batched_chunks_with_the_watermark_equal_one_at_a_time(engines, one_torch_thread):
    schedules = SCHEDULES[:3]
    _assert_same(_one_at_a_time(engines["watermark"], schedules), _batched(engines["watermark"], schedules)[:2])


def test_the_short_prompt_for_first_chunks_beside_later_chunks(engines, one_torch_thread, monkeypatch):
    """``first_chunk``: segment 0's later chunks (whole voice prompt) and segment 1's first
    chunk (short prompt) share one S3Gen call; each row keeps its own prompt."""
    engine = engines["first_chunk"]
    staggered = (((10, 0), (25, 5), (7, 5)), ((0, 0), (4, 0), (30, 4)))  # segment 1 starts a round later
    prompts: list[list[int]] = []
    real = s3gen_batch.flow_mels

    def spy(s3gen, rows, noises, steps):
        prompts.append([row.reference.prompt_tokens for row in rows])
        return real(s3gen, rows, noises, steps)

    sequential = _one_at_a_time(engine, staggered)
    monkeypatch.setattr(s3gen_batch, "flow_mels", spy)
    batched = _batched(engine, staggered)
    _assert_same(sequential, batched[:2])
    assert prompts == [[20], [50, 20], [50, 50]]  # round 0: segment 1 has no token yet


def test_decoders_with_and_without_tokens_in_one_batch(engines, one_torch_thread):
    """A call with only special tokens runs no S3Gen row and leaves its decoder as it was."""
    engine = engines["plain"]
    first, second = _decoders(engine, 2)
    with engine.work():
        out = engine.decode_batch([DecodeCall(first, (SPEECH_VOCAB, SPEECH_VOCAB + 1), 0, False),
                                   DecodeCall(second, tuple(_tokens(0, 9, 0)), 0, False)])
    assert len(out[0].audio) == 0 and first.vocoder._calls == 0 and first.vocoder._decoded == []
    assert len(out[1].audio) == 9 * SAMPLES_PER_TOKEN - second.vocoder.crossfade


def test_rows_of_different_step_counts_and_prompts_render_as_alone(engines, one_torch_thread):
    engine = engines["plain"]
    s3gen = engine.s3gen
    full, short = prepared_reference(s3gen, engine.conds.gen), prepared_reference(s3gen, engine.s3gen_reference(0.8))
    rows = [RenderRow(_tokens(0, 11, 1), full, seed=1), RenderRow(_tokens(1, 27, 1), short, seed=2, n_timesteps=4),
            RenderRow(_tokens(2, 5, 1), short, seed=3), RenderRow(_tokens(3, 19, 1), full, seed=4, n_timesteps=4)]
    alone = [render_rows(s3gen, [row])[0].audio for row in rows]
    together = [r.audio for r in render_rows(s3gen, rows)]
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=ATOL)


def test_padding_reaches_valid_frames_through_the_pre_lookahead_unless_zeroed(engines, one_torch_thread,
                                                                             monkeypatch):
    """Upstream's encoder feeds the embedded padding to the pre-lookahead convolution (it
    reads 3 positions ahead): shorter rows then move by far more than float tolerance."""
    engine = engines["plain"]
    s3gen = engine.s3gen
    ref = prepared_reference(s3gen, engine.conds.gen)
    rows = [RenderRow(_tokens(0, 5, 2), ref, seed=1), RenderRow(_tokens(1, 30, 2), ref, seed=2)]
    alone = render_rows(s3gen, rows[:1])[0].audio
    fixed = render_rows(s3gen, rows)[0].audio
    real = s3gen_batch.encode
    monkeypatch.setattr(s3gen_batch, "encode", lambda enc, xs, lens, padded: real(enc, xs, lens, padded=False))
    leaking = render_rows(s3gen, rows)[0].audio
    assert np.max(np.abs(fixed - alone)) < ATOL / 10 < np.max(np.abs(leaking - alone))


def test_carrying_the_hift_source_reuses_the_last_call_over_the_context(engines, one_torch_thread):
    carry, plain = engines["carry"], engines["plain"]
    (decoder,), (exact,) = _decoders(carry, 1), _decoders(plain, 1)
    with carry.work():
        decoder.decode(_tokens(0, 20, 0), 0, last=False)
        exact.decode(_tokens(0, 20, 0), 0, last=False)
        source = decoder.vocoder._source
        request = decoder.vocoder.prepare(_tokens(0, 10, 1), 6)
        row = decoder.vocoder.render_row(request)
        assert torch.equal(row.source_prefix, source[:, :, -6 * SAMPLES_PER_TOKEN:])
        assert exact.vocoder.render_row(exact.vocoder.prepare(_tokens(0, 10, 1), 6)).source_prefix is None
        carried = decoder.decode(_tokens(0, 10, 1), 6, last=True).audio
        fresh = exact.decode(_tokens(0, 10, 1), 6, last=True).audio
    assert len(carried) == len(fresh) and not np.allclose(carried, fresh, atol=ATOL)
    sequential = _one_at_a_time(carry, SCHEDULES[:2], upstream=False)  # upstream has no source cache
    _assert_same(sequential, _batched(carry, SCHEDULES[:2])[:2])


def test_bad_batches_are_refused_clearly(engines):
    plain, other = engines["plain"], engines["watermark"]
    (mine,), (theirs,) = _decoders(plain, 1), _decoders(other, 1)
    with pytest.raises(ValueError, match=r"call 1: .*not made by this engine"):
        plain.decode_batch([DecodeCall(mine, (1, 2), 0, False), DecodeCall(theirs, (1, 2), 0, False)])
    with pytest.raises(ValueError, match=r"call 1: its decoder appears twice"):
        plain.decode_batch([DecodeCall(mine, (1, 2), 0, False), DecodeCall(mine, (3, 4), 0, False)])
    with pytest.raises(ValueError, match="not made by this engine"):
        plain.decode_batch([DecodeCall(object(), (1,), 0, False)])
    assert mine.vocoder._calls == 0 and plain.decode_batch([]) == []


def test_a_stale_chunk_request_is_refused(engines, one_torch_thread):
    (decoder,) = _decoders(engines["plain"], 1)
    vocoder = decoder.vocoder
    request = vocoder.prepare(_tokens(0, 4, 0), 0)
    rendered = render_rows(vocoder.s3gen, [vocoder.render_row(request)])[0]
    vocoder.finish(request, rendered)
    with pytest.raises(ValueError, match="stale"):
        vocoder.finish(request, rendered)
