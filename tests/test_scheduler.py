"""The scheduler (``seqopt_core.scheduler``) on the sine engine: pure Python, fast.

Out of memory halves the batch for good and loses or repeats no segment; a
batched failure of another kind goes one at a time; a streamed segment that
fails is retried once, then split; the look-ahead ramp; several streams share
one batch and each gets its own audio; closing streams frees the batch; chunk
timings; and ``planned_chunks`` cuts exactly as synthesis does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import sine_engine
from seqopt_core import Pipeline, PluginHost, SynthesisError, hookimpl
from seqopt_core.scheduler import PlannedChunk, ramp_sizes

TEXT = ("The first one is short. Then a second sentence comes along here.\n\n"
        "A third follows it, after a paragraph. Number four is next; five is almost the end. "
        "Six closes the text.")
_WORDS = "one two three four five six seven eight nine ten eleven twelve".split()
#: Twelve sentences, each longer than the one before: 2, 4, 7, ... 32 sine tokens, so
#: rows of a batch finish one at a time.
RAMP_TEXT = " ".join(" ".join(_WORDS[: i + 1]).capitalize() + "." for i in range(12))
SPLITTABLE = "Alpha beta gamma delta. Epsilon zeta eta theta."
HALVES = ("Alpha beta gamma delta.", "Epsilon zeta eta theta.")
#: The profile's planner sizes: SPLITTABLE is one segment (split only by the retry); chunks of
#: the report's adaptive policy (a first chunk of 10 tokens, then 15 for short segments).
WHOLE = {"planner": {"target_tokens": 96, "max_tokens": 128},
         "chunk_policy": {"name": "adaptive", "options": {"base_chunk_size": 25, "first_chunk_size": 10}}}


@pytest.fixture(scope="module")
def host() -> PluginHost:
    host = PluginHost.discover()
    host.register(sine_engine, name="sine_engine")
    return host


def sine_pipeline(host: PluginHost, options: dict | None = None, *, overrides: dict | None = None,
                  **synthesis) -> Pipeline:
    config = {"engine": {"name": "sine", "options": options or {}},
              "estimator": {"name": "ratio"},
              "planner": {"target_tokens": 4, "max_tokens": 128},
              "synthesis": {"seed": 11, **synthesis}}
    for key, value in (overrides or {}).items():
        config[key] = value
    return Pipeline.from_config(overrides=config, host=host)


@dataclass
class Step:
    batch: int
    held: int  # rows the step would hold: in flight before it plus joining
    in_flight: int
    joining: list[str]  # texts of the segments joining
    ran: list[tuple[int, int]] = field(default_factory=list)  # (stream, segment index) of rows that ran
    finished: list[int] = field(default_factory=list)  # segment indexes that finished
    error: str | None = None


class Recorder:
    """Every batch the scheduler opens on ``engine`` and every step it runs."""

    def __init__(self, engine, monkeypatch) -> None:
        self.batches: list[sine_engine.SineBatch] = []
        self.steps: list[Step] = []
        original = engine.open_batch

        def open_batch(attention=None):
            batch = original(attention)
            number = len(self.batches)
            self.batches.append(batch)
            step = batch.step

            def recorded(joining=()):
                record = Step(number, batch.rows + len(joining), batch.rows, [j.segment.text for j in joining])
                self.steps.append(record)
                try:
                    out = step(joining)
                except Exception as exc:
                    record.error = type(exc).__name__
                    raise
                record.ran = [(s.job.stream, s.job.segment.index) for s in out]
                record.finished = [s.job.segment.index for s in out if s.finished is not None]
                return out

            batch.step = recorded
            return batch

        monkeypatch.setattr(engine, "open_batch", open_batch)

    def texts_opened_with(self) -> list[str]:
        """The first joining text of each batch (one-row batches: the segment it ran)."""
        return [next(s.joining[0] for s in self.steps if s.batch == n and s.joining)
                for n in range(len(self.batches)) if any(s.batch == n and s.joining for s in self.steps)]


def audio_of(stream) -> np.ndarray:
    return np.concatenate([c.audio for c in stream])


@pytest.fixture(scope="module")
def reference(host):
    """Each text's run one segment at a time with no faults: the tokens and audio to match."""
    runs = {}
    for text in (TEXT, RAMP_TEXT):
        runs[text] = sine_pipeline(host, batch_size=1).synthesize(text)
    return runs


# -- out of memory -----------------------------------------------------------------------


def test_out_of_memory_halves_the_batch_and_it_never_grows_back(host, reference, monkeypatch):
    pipeline = sine_pipeline(host, {"oom_above_rows": 3}, batch_size=8)
    rec = Recorder(pipeline.engine, monkeypatch)
    result = pipeline.synthesize(RAMP_TEXT)
    failures = [(s.error, s.held) for s in rec.steps if s.error]
    assert failures == [("MemoryError", 8), ("MemoryError", 4)]
    after = rec.steps[[i for i, s in enumerate(rec.steps) if s.error][-1] + 1:]
    assert max(s.held for s in after) == 2  # halved twice, and never wider again
    assert result.metrics.segment_speech_tokens == reference[RAMP_TEXT].metrics.segment_speech_tokens
    assert np.array_equal(result.audio, reference[RAMP_TEXT].audio)
    assert all(b.closed for b in rec.batches)


def test_rows_without_a_result_restart_and_none_is_lost_or_repeated(host, reference, monkeypatch):
    pipeline = sine_pipeline(host, {"oom_above_rows": 3}, batch_size=8)
    rec = Recorder(pipeline.engine, monkeypatch)
    stream = pipeline.stream(RAMP_TEXT)
    chunks = list(stream)
    oom = [s for s in rec.steps if s.error == "MemoryError"]
    assert oom and oom[0].in_flight > 0, "the out of memory should hit a batch with rows half generated"
    finished = [i for s in rec.steps for i in s.finished]
    assert sorted(finished) == list(range(12))  # each segment finished exactly once
    assert [s.segment.index for s in stream.metrics.segments] == list(range(12))
    assert stream.metrics.segment_speech_tokens == reference[RAMP_TEXT].metrics.segment_speech_tokens
    assert np.array_equal(np.concatenate([c.audio for c in chunks]), reference[RAMP_TEXT].audio)
    after_oom = rec.steps[rec.steps.index(oom[-1]) + 1:]
    assert max(s.held for s in after_oom if s.batch != 0) <= 2


def test_out_of_memory_with_one_row_names_the_segment(host, monkeypatch):
    pipeline = sine_pipeline(host, {"oom_above_rows": 0}, batch_size=4,
                             overrides={"planner": {"target_tokens": 12, "max_tokens": 40}})
    rec = Recorder(pipeline.engine, monkeypatch)
    with pytest.raises(SynthesisError) as caught:
        pipeline.synthesize(TEXT)
    message = str(caught.value)
    assert "segment 0" in message and "'The first one is short.'" in message
    assert "out of memory even in a batch of one" in message and "MemoryError" in message
    assert [(s.error, s.held) for s in rec.steps] == [("MemoryError", 4), ("MemoryError", 2),
                                                       ("MemoryError", 1)]
    assert all(b.closed for b in rec.batches)
    assert pipeline.last_metrics is not None and not pipeline.last_metrics.generation.completed


# -- other failures ----------------------------------------------------------------------


def test_a_batched_failure_goes_one_at_a_time_with_a_warning(host, monkeypatch):
    pipeline = sine_pipeline(host, {"fail_above_rows": 1}, batch_size=4,
                             overrides={"planner": {"target_tokens": 12, "max_tokens": 40}})
    rec = Recorder(pipeline.engine, monkeypatch)
    with pytest.warns(RuntimeWarning, match="one at a time"):
        result = pipeline.synthesize(TEXT)
    assert [s.error for s in rec.steps if s.error] == ["RuntimeError"]
    assert all(s.held == 1 for s in rec.steps if not s.error)
    ref = sine_pipeline(host, batch_size=1,
                        overrides={"planner": {"target_tokens": 12, "max_tokens": 40}}).synthesize(TEXT)
    assert [s.segment.index for s in result.metrics.segments] == [0, 1, 2, 3, 4]
    assert result.metrics.segment_speech_tokens == ref.metrics.segment_speech_tokens
    assert np.array_equal(result.audio, ref.audio)


def test_a_streamed_segment_that_fails_is_retried_once_then_split(host, monkeypatch):
    # 47 characters: 12 tokens, more than the 8 steps each batch gets; each half: 6 tokens.
    # The first chunk would be 10 tokens, so the failure comes before any audio.
    options = {"tokens_per_text_char": 0.25, "fail_after_steps": 8}
    pipeline = sine_pipeline(host, options, batch_size=1, overrides=WHOLE)
    assert [s.text for s in pipeline.planner.plan(SPLITTABLE).segments] == [SPLITTABLE]
    rec = Recorder(pipeline.engine, monkeypatch)
    stream = pipeline.stream(SPLITTABLE)
    chunks = list(stream)
    assert rec.texts_opened_with() == [SPLITTABLE, SPLITTABLE, *HALVES]  # tried, retried once, split
    assert [s.error for s in rec.steps if s.error] == ["RuntimeError", "RuntimeError"]
    assert {c.segment.index for c in chunks} == {0}
    assert [c.is_segment_end for c in chunks] == [False] * (len(chunks) - 1) + [True]
    halves = [sine_pipeline(host, {"tokens_per_text_char": 0.25}, batch_size=1, overrides=WHOLE).synthesize(h)
              for h in HALVES]
    tokens = [t for h in halves for t in h.metrics.segment_speech_tokens[0]]
    assert [len(h.metrics.segment_speech_tokens[0]) for h in halves] == [6, 6]
    assert stream.metrics.segment_speech_tokens == [tokens]
    assert len(stream.metrics.segments) == 1 and stream.metrics.segments[0].speech_tokens == 12
    audio = np.concatenate([c.audio for c in chunks])
    assert len(audio) == 12 * sine_engine.SAMPLES_PER_TOKEN
    assert np.array_equal(audio, np.concatenate([h.audio for h in halves]))  # both halves' audio


def test_a_segment_that_keeps_failing_names_itself(host):
    pipeline = sine_pipeline(host, {"fail_after_steps": 1}, batch_size=1, overrides=WHOLE)
    with pytest.raises(SynthesisError, match=r"segment 0 \('Alpha beta gamma delta\. Epsilon") as caught:
        list(pipeline.stream(SPLITTABLE))
    assert "RuntimeError" in str(caught.value) and "also when split" in str(caught.value)


def test_a_failure_after_audio_was_streamed_is_not_retried(host, monkeypatch):
    # 24 tokens; the first chunk (10 tokens) is out before the 13th step fails
    pipeline = sine_pipeline(host, {"fail_after_steps": 12}, batch_size=1, overrides=WHOLE)
    rec = Recorder(pipeline.engine, monkeypatch)
    stream = pipeline.stream(SPLITTABLE)
    first = next(stream)
    assert first.event.speech_tokens == 10
    with pytest.raises(SynthesisError, match="after part of its audio was streamed"):
        list(stream)
    assert len(rec.batches) == 1 and rec.batches[0].closed


# -- the look-ahead ramp -------------------------------------------------------------------


def test_ramp_sizes():
    assert [ramp_sizes(8)(k) for k in range(5)] == [2, 4, 8, 8, 8]
    assert [ramp_sizes(3)(k) for k in range(3)] == [2, 3, 3]
    assert [ramp_sizes(1)(k) for k in range(3)] == [1, 1, 1]


def test_the_batch_widens_2_4_8_as_segments_end(host, reference, monkeypatch):
    pipeline = sine_pipeline(host, batch_size=8)
    rec = Recorder(pipeline.engine, monkeypatch)
    audio = audio_of(pipeline.stream(RAMP_TEXT))
    assert {i for s in rec.steps if s.batch == 0 for _, i in s.ran} == {0}  # streamed alone
    shared = [s for s in rec.steps if s.batch != 0]
    joins = [s.held for s in shared if s.joining]
    assert joins[:3] == [2, 4, 8]
    assert max(s.held for s in shared) == 8
    assert np.array_equal(audio, reference[RAMP_TEXT].audio)
    # without look-ahead (synthesize) the batch has its full width at once
    rec.steps.clear()
    pipeline.synthesize(RAMP_TEXT)
    assert rec.steps[0].held == 8


# -- several streams on one pipeline ---------------------------------------------------------


def _interleave(streams, close_when=None):
    """Round-robin ``next()`` over ``streams``; a stream is closed once
    ``close_when(i, chunk)`` says so of its latest chunk."""
    chunks: list[list] = [[] for _ in streams]
    live = set(range(len(streams)))
    while live:
        for i in sorted(live):
            try:
                chunks[i].append(next(streams[i]))
            except StopIteration:
                live.discard(i)
                continue
            if close_when is not None and close_when(i, chunks[i][-1]):
                streams[i].close()
                live.discard(i)
    return chunks


def test_two_streams_share_the_batch_and_each_gets_its_own_audio(host, reference, monkeypatch):
    pipeline = sine_pipeline(host, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    a, b = pipeline.stream(RAMP_TEXT), pipeline.stream(TEXT)
    ca, cb = _interleave([a, b])
    assert any(len({stream for stream, _ in s.ran}) == 2 for s in rec.steps), \
        "no step ran rows of both streams"
    assert np.array_equal(np.concatenate([c.audio for c in ca]), reference[RAMP_TEXT].audio)
    assert np.array_equal(np.concatenate([c.audio for c in cb]), reference[TEXT].audio)
    assert a.metrics.generation.segments == 12 and b.metrics.generation.segments == 5
    assert a.metrics.segment_speech_tokens == reference[RAMP_TEXT].metrics.segment_speech_tokens
    assert b.metrics.segment_speech_tokens == reference[TEXT].metrics.segment_speech_tokens
    assert all(batch.closed for batch in rec.batches)


def test_closing_one_stream_early_leaves_the_other_intact(host, reference, monkeypatch):
    pipeline = sine_pipeline(host, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    a, b = pipeline.stream(RAMP_TEXT), pipeline.stream(TEXT)
    in_flight_at_close: list[list[tuple[int, int]]] = []

    def close_a(i, chunk):
        """Close A as soon as rows of both streams are in flight in the shared batch."""
        streams = {job.stream for batch in rec.batches if not batch.closed for job in batch.jobs}
        if i != 0 or len(streams) < 2:
            return False
        in_flight_at_close.append(sorted((j.stream, j.segment.index) for batch in rec.batches
                                         if not batch.closed for j in batch.jobs))
        return True

    ca, cb = _interleave([a, b], close_when=close_a)
    assert len(in_flight_at_close) == 1, "rows of both streams never shared the batch"
    a_stream = rec.steps[0].ran[0][0]  # the first step run was A's first segment
    assert any(stream == a_stream for stream, _ in in_flight_at_close[0])  # A's rows were abandoned
    assert len(ca) < len(reference[RAMP_TEXT].metrics.chunks)
    assert a.metrics is not None and not a.metrics.generation.completed
    assert b.metrics.generation.completed
    assert np.array_equal(np.concatenate([c.audio for c in cb]), reference[TEXT].audio)
    assert b.metrics.segment_speech_tokens == reference[TEXT].metrics.segment_speech_tokens
    assert all(batch.closed for batch in rec.batches)
    # the scheduler is left clean: a later run is as it is alone
    assert np.array_equal(audio_of(pipeline.stream(RAMP_TEXT)), reference[RAMP_TEXT].audio)


def test_closing_the_only_stream_frees_the_batch(host, monkeypatch):
    pipeline = sine_pipeline(host, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    stream = pipeline.stream(RAMP_TEXT)
    for chunk in stream:
        if chunk.segment.index == 2:
            break
    shared = rec.batches[-1]
    assert len(rec.batches) == 2 and shared.rows > 0 and not shared.closed  # rows generating ahead
    stream.close()
    assert shared.closed and shared.rows == 0
    assert all(batch.closed for batch in rec.batches)
    assert stream.metrics is not None and not stream.metrics.generation.completed


# -- chunks ----------------------------------------------------------------------------------


def test_chunk_event_timings(host):
    pipeline = sine_pipeline(host, batch_size=4)
    events = [c.event for c in pipeline.stream(RAMP_TEXT)]
    for e in events:
        assert e.s3gen_seconds <= e.decode_seconds
        assert e.generate_seconds == e.t3_seconds + e.decode_seconds
        assert e.t3_seconds >= 0 and e.queue_seconds >= 0
    assert all(e.queue_seconds == 0 for e in events if e.segment_index == 0)  # streamed
    assert all(e.queue_seconds > 0 for e in events if e.segment_index > 0)  # generated ahead
    sequential = [c.event for c in sine_pipeline(host, batch_size=1).stream(RAMP_TEXT)]
    assert all(e.queue_seconds == 0 for e in sequential)


@pytest.mark.parametrize("policies", [
    {},  # the profile's deadline chunks (from the sine engine's measured costs), adaptive context
    {"chunk_policy": {"name": "adaptive", "options": {"base_chunk_size": 25, "first_chunk_size": 10}}},
    {"chunk_policy": {"name": "fixed", "options": {"chunk_size": 5}},
     "context_policy": {"name": "fixed", "options": {"context_window": 3}}},
], ids=["deadline", "adaptive", "fixed-5-context-3"])
def test_planned_chunks_are_the_chunks_decoded(host, monkeypatch, policies):
    pipeline = sine_pipeline(host, batch_size=4, overrides=policies)
    engine = pipeline.engine
    calls: dict[int, list[PlannedChunk]] = {}
    original = engine.decoder

    def decoder(job, *, crossfade_ms):
        inner = original(job, crossfade_ms=crossfade_ms)
        mine = calls.setdefault(job.segment.index, [])
        decoded = 0
        decode = inner.decode

        def recorded(tokens, context, *, last):
            nonlocal decoded
            if tokens:  # an empty last chunk only flushes: no vocoder call (harness.vocoder_calls)
                mine.append(PlannedChunk(len(tokens), min(decoded, context)))
                decoded += len(tokens)
            return decode(tokens, context, last=last)

        inner.decode = recorded
        return inner

    monkeypatch.setattr(engine, "decoder", decoder)
    plan = pipeline.planner.plan(RAMP_TEXT)
    chunks = list(pipeline.stream(RAMP_TEXT, plan))
    exact_multiples = 0
    lengths = [(seg, engine.speech_token_limit(seg)) for seg in plan.segments]
    stream_plan = pipeline.scheduler.planned_stream(lengths)
    for (seg, n), planned in zip(lengths, stream_plan, strict=True):
        assert n == math.ceil(len(seg.text) * 0.5)
        if seg.index == 0:
            assert pipeline.scheduler.planned_chunks(seg, n) == planned  # a stream's first segment
        assert sum(c.new_tokens for c in planned) == n
        assert calls[seg.index] == planned, seg
        mine = [c for c in chunks if c.segment.index == seg.index]
        assert [c.event.speech_tokens for c in mine if c.event.speech_tokens] == [c.new_tokens for c in planned]
        assert all(c.event.speech_tokens > 0 for c in mine[:-1])  # only a segment's last chunk may be empty
        exact_multiples += mine[-1].event.speech_tokens == 0
    if "context_policy" in policies:
        assert exact_multiples >= 2  # 10, 20 and 25 tokens end on a full chunk of 5


def test_chunk_events_say_how_much_context_each_call_reread(host):
    """context_tokens is the context policy's window, at most what the segment decoded before."""
    overrides = {"chunk_policy": {"name": "fixed", "options": {"chunk_size": 5}},
                 "context_policy": {"name": "fixed", "options": {"context_window": 7}}}
    for batch_size in (1, 4):  # streamed, and generated ahead then decoded
        events = [c.event for c in sine_pipeline(host, batch_size=batch_size, overrides=overrides)
                  .stream(RAMP_TEXT)]
        decoded: dict[int, int] = {}
        for e in events:
            before = decoded.get(e.segment_index, 0)
            assert e.context_tokens == min(7, before), (batch_size, e)
            decoded[e.segment_index] = before + e.speech_tokens
        assert max(e.context_tokens for e in events) == 7


def test_the_metrics_report_the_fitted_costs(host, tmp_path):
    """MetricsMonitor (seqopt speak --metrics) reports what the vocoder and a T3 step cost,
    fitted from the run's own chunk events."""
    import json

    from seqopt_core.costs import fit_linear
    from seqopt_core.monitor import MetricsMonitor

    pipeline = sine_pipeline(host, batch_size=1, overrides={
        "chunk_policy": {"name": "fixed", "options": {"chunk_size": 4}},
        "context_policy": {"name": "fixed", "options": {"context_window": 6}}})
    monitor = MetricsMonitor(tmp_path / "m.json")
    pipeline.host.register(monitor, name="metrics-test")
    try:
        list(pipeline.stream(RAMP_TEXT))
    finally:
        pipeline.host._pm.unregister(monitor)
    costs = json.loads((tmp_path / "m.json").read_text())["costs"]
    calls = [(c.context_tokens + c.speech_tokens, c.s3gen_seconds) for c in monitor.chunks if c.speech_tokens]
    expected = fit_linear(calls)
    assert costs["vocoder"]["samples"] == len(calls) > 2
    assert costs["vocoder"]["fixed_seconds"] == pytest.approx(expected.fixed_seconds)
    assert costs["vocoder"]["per_token_seconds"] == pytest.approx(expected.per_token_seconds)
    assert costs["t3_steps_measured"] > 0 and costs["t3_step_seconds"] > 0


def test_fit_linear_recovers_a_line_and_never_goes_negative():
    from seqopt_core.costs import fit_linear

    line = fit_linear([(10, 14.7), (25, 16.05), (75, 20.55)])  # 13.8 s fixed + 0.09 s per token
    assert line.fixed_seconds == pytest.approx(13.8) and line.per_token_seconds == pytest.approx(0.09)
    assert fit_linear([(10, 1.0), (10, 1.2)]) is None  # one token count: nothing to fit
    assert fit_linear([]) is None
    flat = fit_linear([(10, 2.0), (20, 1.0)])  # noise that slopes down: a constant cost
    assert flat.per_token_seconds == 0 and flat.fixed_seconds == pytest.approx(1.5)
    through_zero = fit_linear([(10, 0.5), (20, 2.0)])  # the line would cross below zero
    assert through_zero.fixed_seconds == 0 and through_zero.per_token_seconds > 0


def test_fit_costs_leaves_out_each_segments_first_chunk_in_every_run():
    """A segment's first chunk holds the prefill: left out of the T3 step, also when the
    events of several runs (segment 0 again) follow one another."""
    from seqopt_core.costs import fit_costs
    from seqopt_core.types import ChunkEvent

    def run(prefill):
        return [ChunkEvent(seg, i, 10, 0.4, 0.0, 0.0, t3_seconds=(prefill if first else 0.1), s3gen_seconds=1.0)
                for i, (seg, first) in enumerate([(0, True), (0, False), (1, True), (1, False)])]

    fitted = fit_costs(run(prefill=5.0) + run(prefill=7.0))
    assert fitted["t3_steps_measured"] == 4 and fitted["t3_step_seconds"] == pytest.approx(0.01)


# -- decoding several segments in one call (synthesize) ---------------------------------------------


@pytest.mark.parametrize("policies", [{}, WHOLE], ids=["deadline", "adaptive"])
def test_a_whole_text_decodes_segments_together_and_the_audio_is_the_same(host, policies):
    """synthesize with decode_batch_size = 3: chunk k of up to three segments per call, the
    same chunks and audio as one at a time (the sine engine decodes exactly)."""
    overrides = {k: v for k, v in policies.items() if k != "planner"}
    alone = sine_pipeline(host, batch_size=4, decode_batch_size=1, overrides=overrides)
    together = sine_pipeline(host, batch_size=4, decode_batch_size=3, overrides=overrides)
    a, b = alone.synthesize(RAMP_TEXT), together.synthesize(RAMP_TEXT)
    assert np.array_equal(a.audio, b.audio)
    assert [(e.segment_index, e.speech_tokens, e.context_tokens) for e in a.metrics.chunks] == \
        [(e.segment_index, e.speech_tokens, e.context_tokens) for e in b.metrics.chunks]
    assert alone.engine.decode_batches == []  # one at a time: decoder.decode, never decode_batch
    sizes = together.engine.decode_batches
    assert max(sizes) == 3 and all(1 <= n <= 3 for n in sizes)
    assert sum(sizes) == len(b.metrics.chunks)
    # streaming decodes each segment as the stream reaches it, never several at once
    streamed = sine_pipeline(host, batch_size=4, decode_batch_size=3, overrides=overrides)
    assert np.array_equal(audio_of(streamed.stream(RAMP_TEXT)), a.audio)
    assert streamed.engine.decode_batches == []


def test_decode_batch_size_is_checked():
    from seqopt_core import ConfigError, load_config

    with pytest.raises(ConfigError, match="decode_batch_size must be 'auto' or a whole number"):
        load_config(overrides={"synthesis": {"decode_batch_size": 0}})


# -- overlap: tokens generated while chunks are decoded ----------------------------------------------


def _overlapping(log) -> int:
    """How many decodes ran while a token step was running."""
    steps = [(a, b) for stage, a, b in log if stage == "tokens"]
    return sum(any(a < d_end and d_start < b for a, b in steps)
               for stage, d_start, d_end in log if stage == "decode")


@pytest.mark.parametrize("batch_size", [1, 4], ids=["streamed", "batched"])
def test_overlap_decodes_while_tokens_are_generated_and_the_audio_is_the_same(host, batch_size):
    slow = {"step_sleep_seconds": 0.002, "decode_sleep_seconds": 0.01}
    overrides = {"chunk_policy": {"name": "fixed", "options": {"chunk_size": 6}}}
    in_turn = sine_pipeline(host, slow, batch_size=batch_size, overlap=False, overrides=overrides)
    together = sine_pipeline(host, slow, batch_size=batch_size, overlap=True, overrides=overrides)
    assert (in_turn.scheduler.overlap, together.scheduler.overlap) == (False, True)
    a, b = in_turn.stream(RAMP_TEXT), together.stream(RAMP_TEXT)
    audio_a, audio_b = audio_of(a), audio_of(b)
    assert np.array_equal(audio_a, audio_b)
    assert [e.speech_tokens for e in a.metrics.chunks] == [e.speech_tokens for e in b.metrics.chunks]
    assert a.metrics.segment_speech_tokens == b.metrics.segment_speech_tokens
    assert _overlapping(in_turn.engine.stage_log) == 0
    assert _overlapping(together.engine.stage_log) >= 3


def test_closing_an_overlapped_stream_stops_its_worker(host):
    import threading

    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.001}, batch_size=1, overlap=True)
    stream = pipeline.stream(RAMP_TEXT)
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("seqopt-tokens", "seqopt-batch"))]
    assert stream.metrics is not None and not stream.metrics.generation.completed


def test_overlap_true_needs_an_engine_that_can(host):
    from seqopt_core import ConfigError

    sine_pipeline(host, overlap=True)  # declares concurrent_stages
    unable = PluginHost.discover()
    unable.register(_NoStages, name="no_stages")
    with pytest.raises(ConfigError, match="does not declare concurrent_stages"):
        Pipeline.from_config(host=unable, overrides={
            "engine": {"name": "sine-no-stages"}, "estimator": {"name": "ratio"},
            "synthesis": {"overlap": True}})


class _NoStages:
    """The sine engine registered under another name without ``concurrent_stages``."""

    @staticmethod
    @hookimpl
    def seqopt_engines():
        from dataclasses import replace as with_fields

        [spec] = sine_engine.seqopt_engines()
        return [with_fields(spec, name="sine-no-stages", concurrent_stages=False)]
