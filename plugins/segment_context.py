"""Cross-segment context: what one segment passes to the next.

* ``voice`` (default): every segment is conditioned on the same voice prompt
  and nothing else; its record declares the segments independent, so they can
  also run in batches.
* ``speech_tail``: the report's idea; the last speech tokens of the previous
  segment(s) prime the next segment, for continuity of prosody. Its record
  declares the segments dependent: each waits for the one before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import SegmentContextSpec, hookimpl


class VoiceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VoiceContext:
    """Nothing carries over but the voice conditionals."""

    def __init__(self, options: VoiceOptions | None = None) -> None:
        self.options = options or VoiceOptions()

    def prompt_tokens(self, previous_segments: Sequence[Sequence[int]]) -> list[int] | None:
        return None


class SpeechTailOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens_per_segment: int = Field(
        25, ge=1, description="speech tokens kept from the end of each previous segment")
    segments: int = Field(1, ge=1, description="how many previous segments contribute")


class SpeechTailContext:
    """The last ``tokens_per_segment`` speech tokens of each of the last ``segments``
    segments, oldest first."""

    def __init__(self, options: SpeechTailOptions | None = None) -> None:
        self.options = options or SpeechTailOptions()

    def prompt_tokens(self, previous_segments: Sequence[Sequence[int]]) -> list[int] | None:
        if not previous_segments:
            return None
        n = self.options.tokens_per_segment
        tail: list[int] = []
        for tokens in previous_segments[-self.options.segments:]:
            tail.extend(list(tokens)[-n:])
        return tail or None


@hookimpl
def seqopt_segment_context_strategies() -> list[SegmentContextSpec]:
    return [
        SegmentContextSpec(name="voice", factory=VoiceContext, options=VoiceOptions,
                           description="same voice conditionals for every segment"),
        SegmentContextSpec(name="speech_tail", factory=SpeechTailContext,
                           options=SpeechTailOptions, independent_segments=False,
                           description="previous segment's last speech tokens prime the next"),
    ]
