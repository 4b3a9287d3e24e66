from __future__ import annotations

import pytest
from pydantic import ValidationError

from seqopt_plugins.policies.chunk import (
    AdaptiveChunkOptions,
    AdaptiveChunkPolicy,
    FixedChunkOptions,
    FixedChunkPolicy,
)
from seqopt_plugins.policies.context import AdaptiveContextPolicy, FixedContextPolicy
from seqopt_plugins.segment_context import SpeechTailContext, SpeechTailOptions, VoiceContext


@pytest.mark.parametrize("tokens, expected", [(10, 15), (64, 15), (65, 25), (128, 25), (129, 40), (2000, 40)])
def test_adaptive_chunk_follows_the_report_table(tokens, expected):
    assert AdaptiveChunkPolicy().chunk_size(tokens, 1, 0) == expected


@pytest.mark.parametrize("tokens, expected", [(10, 25), (64, 25), (65, 50), (128, 50), (129, 75)])
def test_adaptive_context_follows_the_report_table(tokens, expected):
    assert AdaptiveContextPolicy().context_window(tokens, 3, 2) == expected


def test_adaptive_respects_small_bases():
    policy = AdaptiveChunkPolicy(AdaptiveChunkOptions(base_chunk_size=10))
    assert [policy.chunk_size(t, 1, 0) for t in (30, 100, 300)] == [10, 10, 20]


def test_fixed_policies():
    assert FixedChunkPolicy().chunk_size(5, 0, 0) == 25
    assert FixedContextPolicy().context_window(500, 9, 9) == 50


def test_first_chunk_of_the_stream_can_be_smaller():
    policy = FixedChunkPolicy(FixedChunkOptions(first_chunk_size=8))
    assert policy.chunk_size(100, 0, 0) == 8
    assert policy.chunk_size(100, 1, 0) == 25
    assert policy.chunk_size(100, 0, 1) == 25  # only the stream's first chunk by default
    every = AdaptiveChunkPolicy(AdaptiveChunkOptions(first_chunk_size=8, first_chunk_every_segment=True))
    assert every.chunk_size(100, 0, 3) == 8 and every.chunk_size(100, 1, 3) == 25


def test_options_are_validated():
    with pytest.raises(ValidationError):
        FixedChunkOptions(chunk_size=0)
    with pytest.raises(ValidationError):
        AdaptiveChunkOptions(bands={"short_tokens": 200, "long_tokens": 100, "short_cap": 1,
                                    "long_factor": 1.0, "long_cap": 1})


def test_segment_context_strategies():
    assert VoiceContext().prompt_tokens([[1, 2, 3]]) is None
    tail = SpeechTailContext(SpeechTailOptions(tokens_per_segment=2, segments=2))
    assert tail.prompt_tokens([]) is None
    assert tail.prompt_tokens([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [5, 6, 8, 9]
