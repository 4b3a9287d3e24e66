"""Batched segment synthesis on the tiny random checkpoint (noise, not speech).

The central property: a segment's speech tokens do not depend on which segments
share its batch. Each segment sampled in a batch gets exactly the tokens the
sequential loop samples for it alone with the same generator, for every attention
backend, with prefills of very different lengths (left padding), rows that stop
at different steps (cache compaction) and per-row alignment guards. Then the
pipeline: batch sizes, out-of-memory shrinking, look-ahead, order and early close.
"""

from __future__ import annotations

import copy
import gc

import numpy as np
import pytest
import torch

from seqopt_core import ConfigError, load_config
from seqopt_core.errors import SynthesisError
from seqopt_core.scheduler import BatchOutOfMemory, ramp_sizes
from seqopt_plugins.chatterbox import attention_kernels as ak
from seqopt_plugins.chatterbox import t3_batch, t3_step
from seqopt_plugins.chatterbox.checkpoint import load_checkpoint
from seqopt_plugins.chatterbox.engine import attention_implementation
from seqopt_plugins.chatterbox.pipeline import Pipeline
from seqopt_plugins.chatterbox.t3_batch import (
    BatchedSpeechTokenLoop,
    BatchItem,
    auto_batch_size,
    is_out_of_memory,
    kv_cache_bytes_per_row,
    left_pad,
)
from seqopt_plugins.chatterbox.t3_stream import (
    AlignmentOptions,
    LengthLimits,
    SamplingOptions,
    SpeechTokenLoop,
    text_token_tensor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHORT = "Hi."  # 5 text tokens with start and stop
LONG = ("This is a much longer sentence, with a good number of words and clauses, so that its "
        "prefill is many times the length of the short one; it keeps going for a while, "
        "then it goes on a little more, and then a little more again, until it finally "
        "reaches about one hundred text tokens, which is plenty.")
MEDIUM = "A medium sentence sits in between the two."

#: (text, max_new_tokens, length_guard). The long row stops first, so the short rows'
#: common padding gets trimmed; the length guard makes the third row sample the stop token early.
CASES = [(SHORT, 30, None), (LONG, 8, None), (MEDIUM, 24, (0.0, 0.5)), (SHORT, 18, None)]


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    ak.register()  # seqopt's recording kernels, used here without a pipeline
    return load_checkpoint(tiny_checkpoint)


def _text(model, text):
    t3 = model.t3
    return text_token_tensor(model.tokenizer, text, cfg=True, device=t3.device,
                             start_token=t3.hp.start_text_token, stop_token=t3.hp.stop_text_token)


def _alone(model, impl, alignment, text, limit, guard, seed):
    loop = SpeechTokenLoop(model.t3)
    with attention_implementation(model.t3, impl):
        result = loop.generate(copy.deepcopy(model.conds.t3), _text(model, text),
                               sampling=SamplingOptions(), limits=LengthLimits(limit),
                               generator=torch.Generator().manual_seed(seed),
                               alignment=alignment, length_guard=guard)
    return list(result.tokens), result.alignment


@pytest.mark.parametrize("impl", ["sdpa", ak.EAGER_MAPS, ak.SDPA_ALIGNED])
def test_batched_tokens_equal_each_segment_alone(model, impl, monkeypatch):
    lengths = [_text(model, text).size(-1) for text, _, _ in CASES]
    assert min(lengths) <= 5 and max(lengths) >= 90  # very different prefills
    alignment = None if impl == "sdpa" else AlignmentOptions()
    trims = []
    real_trim = t3_step._trim_common_padding

    def spy(past, mask, rows):
        before = mask.size(1)
        out = real_trim(past, mask, rows)
        trims.append(before - out.size(1))
        return out

    monkeypatch.setattr(t3_step, "_trim_common_padding", spy)
    items = [BatchItem(copy.deepcopy(model.conds.t3), _text(model, text), LengthLimits(limit),
                       torch.Generator().manual_seed(seed), guard)
             for seed, (text, limit, guard) in enumerate(CASES)]
    with attention_implementation(model.t3, impl):
        batched = BatchedSpeechTokenLoop(model.t3).generate(items, sampling=SamplingOptions(),
                                                            alignment=alignment)
    batch_trims = list(trims)  # the batch's own (each segment alone runs the same step code)
    for seed, ((text, limit, guard), row) in enumerate(zip(CASES, batched)):
        tokens, solo_guard = _alone(model, impl, alignment, text, limit, guard, seed)
        assert list(row.tokens) == tokens, (impl, seed)
        if alignment is not None:  # each row has its own guard, fed its own unpadded maps
            assert row.alignment is not None and row.alignment.decisions == solo_guard.decisions
            assert len(row.alignment.decisions) == len(tokens) + (row.stopped_by != "length_limit")
    assert [r.stopped_by for r in batched][:2] == ["length_limit", "length_limit"]
    assert len(batched[1].tokens) == 8 and len(batched[0].tokens) == 30
    assert batched[2].stopped_by in ("stop_token", "alignment_guard") and len(batched[2].tokens) < 24
    assert max(batch_trims) > 0  # the long row left: the padding nobody needs was cut off


@pytest.mark.parametrize("impl", ["sdpa", ak.SDPA_ALIGNED])
def test_continuous_batching_equals_each_segment_alone(model, impl, monkeypatch):
    """Six segments, at most two at a time: each one that ends is replaced by the next,
    whose prefill joins a batch already deep into decoding (left-padded caches)."""
    cases = CASES + [(LONG, 12, None), (MEDIUM, 5, None)]
    alignment = None if impl == "sdpa" else AlignmentOptions()
    passes = []
    real = t3_step.T3Batch._forward

    def forward(self, inputs, mask, positions, past, rows):
        passes.append(("prefill" if inputs.size(1) > 1 else "decode", rows, past.get_seq_length()))
        return real(self, inputs, mask, positions, past, rows)

    monkeypatch.setattr(t3_step.T3Batch, "_forward", forward)
    items = [BatchItem(copy.deepcopy(model.conds.t3), _text(model, text), LengthLimits(limit),
                       torch.Generator().manual_seed(seed), guard)
             for seed, (text, limit, guard) in enumerate(cases)]
    with attention_implementation(model.t3, impl):
        batched = BatchedSpeechTokenLoop(model.t3).generate(items, sampling=SamplingOptions(),
                                                            alignment=alignment, max_active=2)
    batch_passes = list(passes)  # the batch's own (each segment alone runs the same step code)
    for seed, ((text, limit, guard), row) in enumerate(zip(cases, batched)):
        tokens, solo_guard = _alone(model, impl, alignment, text, limit, guard, seed)
        assert list(row.tokens) == tokens, (impl, seed)
        if alignment is not None:
            assert row.alignment.decisions == solo_guard.decisions
        assert row.t3_seconds > 0
    assert max(rows for kind, rows, _ in batch_passes if kind == "decode") == 2
    prefills = [i for i, (kind, _, _) in enumerate(batch_passes) if kind == "prefill"]
    assert len(prefills) >= 4  # 2 at the start, then one per replacement
    # a replacement joined while another segment was mid-way: decoding resumed at two rows
    assert any(batch_passes[i + 1][0] == "decode" and batch_passes[i + 1][1] == 2 for i in prefills[1:])


def test_max_active_must_be_positive(model):
    item = BatchItem(copy.deepcopy(model.conds.t3), _text(model, SHORT), LengthLimits(3))
    with pytest.raises(ValueError, match="max_active must be at least 1"):
        BatchedSpeechTokenLoop(model.t3).generate([item], sampling=SamplingOptions(), max_active=0)


def test_alignment_maps_are_per_row_and_ignore_padding(model):
    """Every recorded row's weights sum to 1 over its real keys; padding keys get 0."""
    t3 = model.t3
    embeds = [torch.randn(2, n, t3.dim) * 0.5 for n in (7, 19)]
    inputs, mask, positions, pads = left_pad(embeds)
    assert pads == [12, 0] and positions[0, 12:].tolist() == list(range(7))
    tap = ak.AttentionTap(rows=(0, 2))
    for impl in (ak.EAGER_MAPS, ak.SDPA_ALIGNED):
        with attention_implementation(t3, impl), torch.inference_mode(), ak.tapping(tap):
            t3.tfmr(inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=True)
        maps = tap.mean()
        assert maps.shape == (2, 19, 19)
        short = maps[0, 12:]  # the short row's real queries
        assert torch.all(short[:, :12] == 0)
        torch.testing.assert_close(short.sum(-1), torch.ones(7))
        tap.latest.clear()


def test_closing_the_batched_loop_early_frees_the_cache(model):
    from transformers.cache_utils import Cache

    items = [BatchItem(copy.deepcopy(model.conds.t3), _text(model, text), LengthLimits(20),
                       torch.Generator().manual_seed(i)) for i, text in enumerate((SHORT, MEDIUM))]
    events = BatchedSpeechTokenLoop(model.t3).events(items, sampling=SamplingOptions())
    for _ in range(5):
        next(events)
    events.close()
    gc.collect()
    assert not [o for o in gc.get_objects() if issubclass(type(o), Cache)]


# -- batch sizes (pure) -------------------------------------------------------------------


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                                         "can't allocate memory: you tried to allocate 1 bytes. "
                                         "Error code 12 (Out of memory)"))
    # what torch's CPU allocator really says (seen in bench_attention at 2,000 tokens of eager)
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:118] err == 0. "
                                         "DefaultCPUAllocator: can't allocate memory: you tried to "
                                         "allocate 512000000 bytes. Error code 12 (Cannot allocate memory)"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_auto_batch_size_from_free_memory(model):
    per_row = kv_cache_bytes_per_row(model.t3.tfmr.config, torch.float32, 100)
    cfg = model.t3.tfmr.config
    assert per_row == cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads) * 4 * 100
    assert kv_cache_bytes_per_row(cfg, torch.bfloat16, 100) * 2 == per_row
    gib = 2**30
    assert auto_batch_size(64 * gib, gib, device_type="cpu") == 8  # capped
    assert auto_batch_size(64 * gib, gib, device_type="cuda") == 32
    assert auto_batch_size(6 * gib, gib, device_type="cpu") == 3  # half of the free memory
    assert auto_batch_size(gib // 10, gib, device_type="cuda") == 1  # never below one
    assert auto_batch_size(None, gib, device_type="mps") == 8


def test_batch_size_config_is_validated():
    assert load_config().config.synthesis.batch_size == "auto"
    assert load_config(overrides={"synthesis": {"batch_size": 4}}).config.synthesis.batch_size == 4
    for bad in (0, -2, "many", 2.5, True, 100_000):
        with pytest.raises(ConfigError, match="batch_size must be 'auto' or a whole number"):
            load_config(overrides={"synthesis": {"batch_size": bad}})
    with pytest.raises(ConfigError, match="lookahead"):
        load_config(overrides={"synthesis": {"lookahead": "sometimes"}})


# -- the pipeline ------------------------------------------------------------------------------

TEXT = ("One. The second sentence is quite a lot longer than the first one was. Three is here. "
        "Four follows it.\n\nFive starts a paragraph, and it is a long one with many words. Six. "
        "Seven ends it.")


def make_pipeline(checkpoint, engine=None, **synthesis) -> Pipeline:
    options = {"checkpoint": str(checkpoint), "watermark": False,
               "benchmark_tokens_per_text_token": 0.4}
    return Pipeline.from_config(profile="rtx4090", engine=engine, overrides={
        "engine": {"options": options}, "synthesis": {"seed": 5, **synthesis},
        "planner": {"target_tokens": 12, "max_tokens": 20}})


@pytest.fixture(scope="module")
def sequential(tiny_checkpoint):
    return make_pipeline(tiny_checkpoint, batch_size=1)


@pytest.fixture(scope="module")
def sequential_audio(sequential):
    """Segments one after another. One torch thread, as in the tests (module fixtures
    run before ``one_torch_thread``; another thread count changes S3Gen's last bits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sequential.synthesize(TEXT)
    finally:
        torch.set_num_threads(before)


class RecordedBatch:
    """One batch the engine opened for the scheduler, and what each of its steps held.

    A segment streamed alone is a batch that only that segment ever joins
    (``kind == "alone"``); the shared batch of segments generated ahead is joined
    by several (``"batch"``). ``fault(batch, joining, width)`` may raise instead of
    running a step (before the engine sees it)."""

    def __init__(self, batch, log, fault):
        self.batch, self.log, self.fault = batch, log, fault
        self.joined: list[int] = []  # segment indexes, in the order they joined
        self.widths: list[int] = []  # segments in each step: rows in flight + joining
        self.ended: list[int] = []  # segments this batch had finished before each step
        self.finished: list[int] = []  # segment indexes, in the order they finished
        self.passes: list[tuple[str, int]] = []  # T3's forward passes: (prefill|decode, rows)

    @property
    def kind(self) -> str:
        return "alone" if len(self.joined) == 1 else "batch"

    @property
    def rows(self) -> int:
        return self.batch.rows

    def step(self, joining=()):
        width = self.batch.rows + len(joining)
        self.joined += [job.segment.index for job in joining]
        self.widths.append(width)
        self.ended.append(len(self.finished))
        if self.fault is not None:
            self.fault(self, joining, width)
        self.log.current = self
        try:
            steps = self.batch.step(joining)
        finally:
            self.log.current = None
        self.finished += [s.job.segment.index for s in steps if s.finished is not None]
        return steps

    def close(self):
        self.batch.close()


class BatchLog:
    """Every batch ``pipeline.engine.open_batch`` hands the scheduler, in order."""

    def __init__(self):
        self.batches: list[RecordedBatch] = []
        self.current: RecordedBatch | None = None

    @property
    def finished(self) -> int:
        return sum(len(b.finished) for b in self.batches)

    def summary(self):
        return [(b.kind, b.joined, max(b.widths)) for b in self.batches]


def _record(pipeline, monkeypatch, fault=None) -> BatchLog:
    """Record (and with ``fault``, break) the batches the engine opens and T3's passes."""
    log = BatchLog()
    engine = pipeline.engine
    real_open = engine.open_batch

    def open_batch(attention=None):
        batch = RecordedBatch(real_open(attention), log, fault)
        log.batches.append(batch)
        return batch

    real_forward = t3_step.T3Batch._forward

    def forward(self, inputs, mask, positions, past, rows):
        if log.current is not None:
            log.current.passes.append(("prefill" if inputs.size(1) > 1 else "decode", rows))
        return real_forward(self, inputs, mask, positions, past, rows)

    monkeypatch.setattr(engine, "open_batch", open_batch)
    monkeypatch.setattr(t3_step.T3Batch, "_forward", forward)
    return log


def _decode_rows(batch: RecordedBatch) -> list[int]:
    """How many segments each of T3's decode passes held in ``batch``."""
    return [rows for kind, rows in batch.passes if kind == "decode"]


def test_synthesize_in_batches_equals_sequential_audio_in_text_order(
        sequential, sequential_audio, tiny_checkpoint, monkeypatch):
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=4)
    plan = pipe.planner.plan(TEXT)
    assert len(plan) >= 6 and pipe.batching(plan) == 4
    log = _record(pipe, monkeypatch)
    result = pipe.synthesize(TEXT)
    # no look-ahead: one continuous generation, 4 segments at a time from the start
    assert log.summary() == [("batch", list(range(len(plan))), 4)]
    assert log.batches[0].widths[0] == 4
    widths = _decode_rows(log.batches[0])
    assert max(widths) == 4 and widths.count(4) > 1  # segments joined as others ended
    np.testing.assert_array_equal(result.audio, sequential_audio.audio)
    batched = result.metrics
    assert [s.segment.index for s in batched.segments] == list(range(len(plan)))
    assert [s.speech_tokens for s in batched.segments] == [
        s.speech_tokens for s in sequential_audio.metrics.segments]
    assert [c.chunk_index for c in batched.chunks] == list(range(len(batched.chunks)))
    assert all(s.stopped_by == "benchmark_length" for s in batched.segments)


def test_synthesize_decodes_segments_together_within_float32_of_sequential(
        sequential, sequential_audio, tiny_checkpoint, monkeypatch, one_torch_thread):
    """decode_batch_size = 3: chunk k of three segments per S3Gen call; the same chunks,
    and audio within float32 tolerance of decoding one segment at a time."""
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=4, decode_batch_size=3)
    assert pipe.scheduler.decode_width() == 3
    assert make_pipeline(tiny_checkpoint, engine=sequential.engine).scheduler.decode_width() == 1  # CPU: auto
    calls = []
    decode_batch = pipe.engine.decode_batch

    def recorded(batch):
        calls.append(len(batch))
        return decode_batch(batch)

    monkeypatch.setattr(pipe.engine, "decode_batch", recorded)
    result = pipe.synthesize(TEXT)
    assert max(calls) == 3 and sum(calls) == len(result.metrics.chunks)
    assert [(c.segment_index, c.speech_tokens, c.context_tokens) for c in result.metrics.chunks] == [
        (c.segment_index, c.speech_tokens, c.context_tokens) for c in sequential_audio.metrics.chunks]
    assert len(result.audio) == len(sequential_audio.audio)
    np.testing.assert_allclose(result.audio, sequential_audio.audio, rtol=0, atol=1e-4)


def test_lookahead_streams_the_first_segment_alone_then_ramps_batches(
        sequential, sequential_audio, tiny_checkpoint, monkeypatch):
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=4)
    log = _record(pipe, monkeypatch)
    stream = pipe.stream(TEXT)
    first = next(stream)
    assert first.segment.index == 0
    assert [(b.kind, b.joined) for b in log.batches] == [("alone", [0])]  # nothing batched yet
    chunks = [first, *stream]
    n = len(pipe.planner.plan(TEXT))
    ahead, = log.batches[1:]
    assert ahead.kind == "batch" and ahead.joined == list(range(1, n))
    ramp = ramp_sizes(4)
    assert [ramp(k) for k in range(4)] == [2, 4, 4, 4]  # the ramp
    # each step of the batch held at most what the ramp allows for the segments ended so far
    assert all(w <= ramp(k) for w, k in zip(ahead.widths, ahead.ended))
    widths = _decode_rows(ahead)
    assert widths[0] == 2 and max(widths) == 4
    seen = [c.segment.index for c in chunks]
    assert seen == sorted(seen) and set(seen) == set(range(n))
    np.testing.assert_array_equal(np.concatenate([c.audio for c in chunks]), sequential_audio.audio)


def test_a_batch_that_runs_out_of_memory_is_retried_smaller(
        sequential, sequential_audio, tiny_checkpoint, monkeypatch):
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=4)

    def flaky(batch, joining, width):
        if width > 2 and log.finished >= 1:  # the second result never comes
            raise RuntimeError("simulated allocation failure")

    log = _record(pipe, monkeypatch, flaky)
    monkeypatch.setattr(pipe.engine, "is_out_of_memory",
                        lambda exc: "simulated allocation failure" in str(exc))
    result = pipe.synthesize(TEXT)
    n = len(pipe.planner.plan(TEXT))
    first, again = log.batches  # one restart
    assert first.joined[:4] == [0, 1, 2, 3] and max(first.widths) == 4
    # the finished segment is kept, the rest restart narrower, each once
    assert len(first.finished) == 1
    assert again.joined == [i for i in range(n) if i not in first.finished]
    assert max(again.widths) == 2 and sorted(first.finished + again.finished) == list(range(n))
    np.testing.assert_array_equal(result.audio, sequential_audio.audio)  # nothing lost
    assert result.metrics.generation.completed


def test_out_of_memory_with_one_segment_names_the_segment(sequential, tiny_checkpoint, monkeypatch):
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=2)

    def always(batch, joining, width):  # every batch of the segments generated ahead
        if any(job.segment.index > 0 for job in joining):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    log = _record(pipe, monkeypatch, always)
    with pytest.raises(SynthesisError, match=r"segment 1 \('The second'\) ran out of memory even in a batch of one"):
        list(pipe.stream(TEXT))
    assert pipe.last_metrics.generation.completed is False
    assert [s.segment.index for s in pipe.last_metrics.segments] == [0]
    # segment 0 streamed alone, then the look-ahead batch halved down to one segment
    assert [(b.joined[0], max(b.widths)) for b in log.batches] == [(0, 1), (1, 2), (1, 1)]


def test_a_batch_failing_otherwise_falls_back_to_one_at_a_time(
        sequential, sequential_audio, tiny_checkpoint, monkeypatch):
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=8)

    def broken(batch, joining, width):  # batched generation fails, not for memory
        if width > 1:
            raise TypeError("'NoneType' object is not callable (simulated)")

    log = _record(pipe, monkeypatch, broken)
    with pytest.warns(RuntimeWarning, match="generating them one at a time"):
        result = pipe.synthesize(TEXT)
    n = len(pipe.planner.plan(TEXT))
    assert log.batches[0].kind == "batch" and log.batches[0].finished == []
    assert [b.joined for b in log.batches if b.kind == "alone"] == [[i] for i in range(n)]
    np.testing.assert_array_equal(result.audio, sequential_audio.audio)


# -- the scheduler's batches: order, out-of-memory halving, other errors -------------------------


def test_scheduler_results_come_in_order_and_width_halves_on_out_of_memory(
        sequential, sequential_audio, tiny_checkpoint, monkeypatch):
    """The shared batch runs out of memory once it has four results while wider than four:
    the rows without a result start again at half the width, which never grows back."""
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=8)

    def oom(batch, joining, width):
        if width > 4 and log.finished >= 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    log = _record(pipe, monkeypatch, oom)  # the engine's own is_out_of_memory recognises it
    result = pipe.synthesize(TEXT)
    n = len(pipe.planner.plan(TEXT))
    # in order, nothing lost or repeated
    assert [s.segment.index for s in result.metrics.segments] == list(range(n))
    np.testing.assert_array_equal(result.audio, sequential_audio.audio)
    first, second = log.batches  # halved once
    assert max(first.widths) == 8 and first.widths[-1] == 8 and max(second.widths) == 4  # 8, then 4 for good
    # the results that came back before the error are kept, also those that came back
    # ahead of an earlier segment still generating (they waited for it: 0, 1, 2 and 5
    # came back, 3 and 4 did not); the second batch gets only the segments without one
    assert len(first.finished) == 4 and sorted(first.finished) != list(range(4))
    assert second.joined == [i for i in range(n) if i not in first.finished]
    assert sorted(first.finished + second.finished) == list(range(n))


def test_scheduler_ramp_and_errors(sequential, sequential_audio, tiny_checkpoint, monkeypatch):
    ramp = ramp_sizes(8)
    assert [ramp(k) for k in range(5)] == [2, 4, 8, 8, 8] and ramp_sizes(3)(10) == 3

    # a failure other than memory: the results already back are kept, the rest go one at a time
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=8)

    def broken(batch, joining, width):
        if width > 1 and log.finished >= 2:
            raise ValueError("not memory")

    log = _record(pipe, monkeypatch, broken)
    with pytest.warns(RuntimeWarning, match=r"failed \(ValueError: not memory\); generating them one at a time"):
        result = pipe.synthesize(TEXT)
    n = len(pipe.planner.plan(TEXT))
    shared, *alone = log.batches
    assert shared.kind == "batch" and 2 <= len(shared.finished) < n
    assert all(b.kind == "alone" for b in alone)
    assert [b.joined[0] for b in alone] == [i for i in range(n) if i not in shared.finished]
    assert [s.segment.index for s in result.metrics.segments] == list(range(n))
    np.testing.assert_array_equal(result.audio, sequential_audio.audio)

    # out of memory even with one segment: the first segment waiting is the one named
    monkeypatch.undo()
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=2)

    def always(batch, joining, width):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    log = _record(pipe, monkeypatch, always)
    with pytest.raises(SynthesisError, match=r"segment 0 .*ran out of memory even in a batch of one") as err:
        pipe.synthesize(TEXT)
    assert isinstance(err.value.__context__, BatchOutOfMemory)
    assert err.value.__context__.job.segment.index == 0
    assert isinstance(err.value.__cause__, torch.cuda.OutOfMemoryError)
    assert [max(b.widths) for b in log.batches] == [2, 1]

    # a batch holds at least one segment
    with pytest.raises(ConfigError, match="batch_size must be 'auto' or a whole number"):
        make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=0)


def test_speech_tail_falls_back_to_sequential(tiny_checkpoint, sequential):
    pipe = Pipeline.from_config(profile="rtx4090", engine=sequential.engine, overrides={
        "engine": {"options": {"checkpoint": str(tiny_checkpoint), "watermark": False,
                               "benchmark_tokens_per_text_token": 0.4}},
        "synthesis": {"batch_size": 8, "seed": 5},
        "planner": {"target_tokens": 12, "max_tokens": 20},
        "segment_context": {"name": "speech_tail"}})
    default = load_config(profile="rtx4090").config.segment_context.name
    assert not pipe.host.strategy("segment_context", "speech_tail").spec.independent_segments
    assert sequential.host.strategy("segment_context", default).spec.independent_segments
    assert pipe.batching(pipe.planner.plan(TEXT)) == 1


def test_closing_a_lookahead_stream_early(sequential, tiny_checkpoint):
    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine, batch_size=4)
    t3 = pipe.engine.t3
    before = t3.tfmr.config._attn_implementation
    stream = pipe.stream(TEXT)
    for chunk in stream:
        if chunk.segment.index == 2:  # inside the first look-ahead batch
            break
    stream.close()
    g = pipe.last_metrics.generation
    assert g.completed is False and [s.segment.index for s in pipe.last_metrics.segments] == [0, 1]
    assert t3.tfmr.config._attn_implementation == before
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in t3.modules()) == 0


def test_auto_batch_size_follows_free_memory(sequential, tiny_checkpoint, monkeypatch):
    from seqopt_plugins.chatterbox import engine as engine_mod

    pipe = make_pipeline(tiny_checkpoint, engine=sequential.engine)  # batch_size = "auto"
    plan = pipe.planner.plan(TEXT)
    need = max(pipe.engine.kv_bytes_per_segment(s) for s in plan.segments)
    assert need > kv_cache_bytes_per_row(pipe.engine.t3.tfmr.config, torch.float32, 2 * 20)
    monkeypatch.setattr(engine_mod, "free_memory_bytes", lambda device: 6 * need + need // 2)
    assert pipe.batching(plan) == 3  # half of the free memory, in whole segments
    monkeypatch.setattr(engine_mod, "free_memory_bytes", lambda device: need)
    assert pipe.batching(plan) == 1
    monkeypatch.setattr(engine_mod, "free_memory_bytes", lambda device: 1000 * need)
    assert pipe.batching(plan) == t3_batch.AUTO_CAP["cpu"]
