"""T3 and S3Gen overlapped on the real engine (tiny random checkpoint: noise, not speech):
with ``synthesis.overlap = true`` the token steps run in a worker thread while chunks
are decoded, and for the same seed the tokens, the chunks and the audio are exactly
the in-turn path's (one torch thread, so both stages compute alike)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from seqopt_core import Pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = ("The first sentence is short. The second one is a little longer than the first. "
        "Here comes the third.\n\nA new paragraph starts here, and it ends here.")


def make(checkpoint, engine=None, **synthesis):
    return Pipeline.from_config(profile="rtx4090", engine=engine, overrides={
        "engine": {"options": {"checkpoint": str(checkpoint), "benchmark_tokens_per_text_token": 0.5}},
        "planner": {"target_tokens": 20, "max_tokens": 30},
        "synthesis": {"seed": 3, **synthesis}})


@pytest.fixture(scope="module")
def in_turn(tiny_checkpoint):
    return make(tiny_checkpoint, overlap=False)


@pytest.mark.parametrize("batch_size", [1, 4], ids=["streamed", "batched"])
def test_overlapped_audio_equals_the_in_turn_audio_watermark_on(in_turn, tiny_checkpoint, batch_size):
    reference = make(tiny_checkpoint, engine=in_turn.engine, overlap=False, batch_size=batch_size)
    overlapped = make(tiny_checkpoint, engine=in_turn.engine, overlap=True, batch_size=batch_size)
    assert overlapped.engine.options.watermark  # the default: Perth's watermark on every chunk
    assert (reference.scheduler.overlap, overlapped.scheduler.overlap) == (False, True)
    a, b = reference.stream(TEXT), overlapped.stream(TEXT)
    audio_a, audio_b = [c.audio for c in a], [c.audio for c in b]
    assert a.metrics.segment_speech_tokens == b.metrics.segment_speech_tokens
    assert [e.speech_tokens for e in a.metrics.chunks] == [e.speech_tokens for e in b.metrics.chunks]
    assert all(np.array_equal(x, y) for x, y in zip(audio_a, audio_b, strict=True))
    assert all(e.t3_seconds > 0 for e in b.metrics.chunks if e.speech_tokens)
    assert not [t for t in threading.enumerate() if t.name.startswith(("seqopt-tokens", "seqopt-batch"))]


def test_auto_leaves_the_overlap_off_on_a_cpu(in_turn, tiny_checkpoint):
    auto = make(tiny_checkpoint, engine=in_turn.engine)
    assert auto.settings.overlap == "auto" and not auto.engine.prefers_overlap()
    assert auto.scheduler.overlap is False


def test_an_unknown_stage_is_refused(in_turn):
    with pytest.raises(ValueError, match="unknown stage 'both'"):
        with in_turn.engine.work(stage="both"):
            pass
