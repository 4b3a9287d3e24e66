"""Capabilities are declared on registry records, and third-party strategies use them.

On the real Chatterbox engine (the tiny random checkpoint):

* an attention backend from another plugin whose record provides alignment (and
  registers seqopt's kernels as its ``setup``) runs the alignment guard exactly
  as the built-in ``sdpa_aligned`` does with the same heads;
* a plain backend object with nothing but ``attn_implementation`` runs;
* a record that claims alignment for an object without ``aligned_heads`` is a
  clear :class:`PluginError` when the pipeline is built;
* a segment-context strategy that declares its segments dependent makes the
  pipeline generate one segment after another, with the history growing; one
  that declares them independent is asked with no history and is batched.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqopt_core import (
    AttentionBackendSpec,
    NoOptions,
    Pipeline,
    PluginError,
    PluginHost,
    SegmentContextSpec,
    hookimpl,
)
from seqopt_plugins.chatterbox.attention_kernels import SDPA_ALIGNED, register

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Within the tiny T3 (16 layers x 16 heads; TINY_ARCH), and not the defaults.
HEADS = ((3, 1), (7, 12))
TEXT = "Hello there. A second one. And a third."
PLANNER = {"target_tokens": 8, "max_tokens": 40}


class AlignedSdpa:
    """A third party's backend object: seqopt's recording SDPA kernel with its own heads."""

    attn_implementation = SDPA_ALIGNED
    aligned_heads = HEADS


class PlainSdpa:
    """Only ``attn_implementation``: nothing else may be read from it."""

    __slots__ = ("attn_implementation",)

    def __init__(self) -> None:
        self.attn_implementation = "sdpa"


class ClaimsAlignment:
    """Declared as providing alignment, but without the heads the guard needs."""

    attn_implementation = SDPA_ALIGNED


class RecordingContext:
    """Primes each segment with the first tokens of the one before; records every call."""

    def __init__(self, calls: list[list[tuple[int, ...]]]) -> None:
        self.calls = calls

    def prompt_tokens(self, previous_segments):
        self.calls.append([tuple(s) for s in previous_segments])
        return list(previous_segments[-1][:3]) if previous_segments else None


class ThirdParty:
    """A plugin object offering the strategies above (as a module would)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[list[tuple[int, ...]]]] = {"tail3": [], "free": []}

    @hookimpl
    def seqopt_attention_backends(self):
        return [
            AttentionBackendSpec(name="tp_aligned", factory=lambda o: AlignedSdpa(), options=NoOptions,
                                 provides_alignment=True, setup=register,
                                 description="third-party SDPA + alignment guard"),
            AttentionBackendSpec(name="tp_plain", factory=lambda o: PlainSdpa(), options=NoOptions,
                                 description="third-party plain SDPA"),
            AttentionBackendSpec(name="tp_no_heads", factory=lambda o: ClaimsAlignment(),
                                 options=NoOptions, provides_alignment=True,
                                 description="claims alignment, has no heads"),
        ]

    @hookimpl
    def seqopt_segment_context_strategies(self):
        return [
            SegmentContextSpec(name="tail3", factory=lambda o: RecordingContext(self.calls["tail3"]),
                               options=NoOptions, independent_segments=False,
                               description="first 3 tokens of the previous segment"),
            SegmentContextSpec(name="free", factory=lambda o: RecordingContext(self.calls["free"]),
                               options=NoOptions, independent_segments=True,
                               description="independent segments"),
        ]


@pytest.fixture(scope="module")
def third_party() -> ThirdParty:
    return ThirdParty()


@pytest.fixture(scope="module")
def host(third_party) -> PluginHost:
    host = PluginHost.discover()
    host.register(third_party, name="third_party")
    return host


def _overrides(tiny_checkpoint, **slots):
    return {"engine": {"options": {"checkpoint": str(tiny_checkpoint), "benchmark_tokens_per_text_token": 0.5,
                                   "watermark": False}},
            "planner": PLANNER, "synthesis": {"seed": 1, **slots.pop("synthesis", {})}, **slots}


@pytest.fixture(scope="module")
def builtin_aligned(tiny_checkpoint, host) -> Pipeline:
    """The built-in ``sdpa_aligned`` backend with HEADS; its engine is reused below."""
    return Pipeline.from_config(overrides=_overrides(
        tiny_checkpoint, attention={"name": "sdpa_aligned", "options": {"aligned_heads": [list(h) for h in HEADS]}}),
        host=host)


def _synthesize(pipeline: Pipeline, text: str = TEXT):
    """``pipeline.synthesize(text)`` and every :class:`GeneratedSegment` its engine returned
    (the device's costs are measured first, if the chunk policy plans with them)."""
    results = []
    if pipeline.scheduler.uses_playback:
        pipeline.costs  # noqa: B018 - measured (or read from the cache) before the recording starts
    engine = pipeline.engine
    open_batch = engine.open_batch

    def recording_open_batch(attention=None):
        batch = open_batch(attention)
        step = batch.step

        def recorded(joining=()):
            out = step(joining)
            results.extend(s.finished for s in out if s.finished is not None)
            return out

        batch.step = recorded
        return batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "open_batch", recording_open_batch)
        return pipeline.synthesize(text), sorted(results, key=lambda r: r.tokens)


def _pipeline(tiny_checkpoint, host, builtin_aligned, **slots) -> Pipeline:
    return Pipeline.from_config(overrides=_overrides(tiny_checkpoint, **slots), host=host,
                                engine=builtin_aligned.engine)


def test_a_third_party_backend_that_provides_alignment_runs_the_guard(tiny_checkpoint, host, builtin_aligned):
    pipeline = _pipeline(tiny_checkpoint, host, builtin_aligned, attention={"name": "tp_aligned"})
    attention = pipeline.attention
    assert (attention.name, attention.attn_implementation) == ("tp_aligned", SDPA_ALIGNED)
    assert attention.provides_alignment and attention.aligned_heads == HEADS
    assert attention.setup is register
    assert builtin_aligned.attention.aligned_heads == HEADS and builtin_aligned.attention.provides_alignment
    (theirs, their_rows), (ours, our_rows) = _synthesize(pipeline), _synthesize(builtin_aligned)
    assert theirs.metrics.generation.segments == ours.metrics.generation.segments >= 2
    assert len(their_rows) == len(our_rows) == theirs.metrics.generation.segments
    for mine, builtin in zip(their_rows, our_rows, strict=True):  # the guard ran on the same maps
        assert mine.alignment is not None and builtin.alignment is not None
        assert mine.alignment.decisions and mine.alignment.alignment.numel() > 0
        assert torch.equal(mine.alignment.alignment, builtin.alignment.alignment)
        assert mine.alignment.decisions == builtin.alignment.decisions
    assert theirs.metrics.segment_speech_tokens == ours.metrics.segment_speech_tokens
    assert [s.stopped_by for s in theirs.metrics.segments] == [s.stopped_by for s in ours.metrics.segments]
    assert np.array_equal(theirs.audio, ours.audio)
    # the engine put T3's implementation back after the work
    assert pipeline.engine.t3.tfmr.config._attn_implementation != SDPA_ALIGNED


def test_a_plain_third_party_backend_needs_only_attn_implementation(tiny_checkpoint, host, builtin_aligned):
    pipeline = _pipeline(tiny_checkpoint, host, builtin_aligned, attention={"name": "tp_plain"})
    attention = pipeline.attention
    assert (attention.attn_implementation, attention.provides_alignment, attention.aligned_heads) == ("sdpa", False, ())
    result, rows = _synthesize(pipeline)  # no AttributeError for what the object lacks
    assert result.metrics.generation.completed and len(result.audio) > 0
    assert rows and all(r.alignment is None for r in rows)  # no guard without alignment
    builtin = _pipeline(tiny_checkpoint, host, builtin_aligned, attention={"name": "sdpa"})
    assert np.array_equal(result.audio, builtin.synthesize(TEXT).audio)


def test_claiming_alignment_without_heads_is_a_plugin_error(tiny_checkpoint, host, builtin_aligned):
    with pytest.raises(PluginError) as caught:
        _pipeline(tiny_checkpoint, host, builtin_aligned, attention={"name": "tp_no_heads"})
    message = str(caught.value)
    assert "'tp_no_heads'" in message and "provides_alignment=True" in message
    assert "aligned_heads" in message and "ClaimsAlignment" in message


def test_dependent_segments_are_generated_one_after_another(tiny_checkpoint, host, builtin_aligned,
                                                            third_party):
    calls = third_party.calls["tail3"]
    calls.clear()
    pipeline = _pipeline(tiny_checkpoint, host, builtin_aligned, segment_context={"name": "tail3"},
                         synthesis={"batch_size": 4})
    plan = pipeline.planner.plan(TEXT)
    assert len(plan.segments) >= 2 and pipeline.batching(plan) == 1
    result = pipeline.synthesize(TEXT)
    tokens = [tuple(t) for t in result.metrics.segment_speech_tokens]
    assert len(tokens) == len(plan.segments)
    assert calls == [tokens[:i] for i in range(len(tokens))]  # the history grows segment by segment


def test_independent_segments_get_no_history_and_are_batched(tiny_checkpoint, host, builtin_aligned,
                                                             third_party, monkeypatch):
    calls = third_party.calls["free"]
    calls.clear()
    pipeline = _pipeline(tiny_checkpoint, host, builtin_aligned, segment_context={"name": "free"},
                         synthesis={"batch_size": 4})
    plan = pipeline.planner.plan(TEXT)
    assert pipeline.batching(plan) == 4
    widest = []
    open_batch = pipeline.engine.open_batch

    def recording_open_batch(attention=None):
        batch = open_batch(attention)
        step = batch.step

        def recorded(joining=()):
            out = step(joining)
            widest.append(batch.rows + sum(s.finished is not None for s in out))
            return out

        batch.step = recorded
        return batch

    monkeypatch.setattr(pipeline.engine, "open_batch", recording_open_batch)
    result = pipeline.synthesize(TEXT)
    assert calls == [[]] * len(plan.segments)  # asked with no history, once per segment
    assert max(widest) >= 2  # segments shared token steps
    assert result.metrics.generation.segments == len(plan.segments)
