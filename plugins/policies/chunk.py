"""Chunk-size policies: how many speech tokens (25 per second of audio) the engine
collects before it decodes them to audio.

* ``fixed``: the same size for every chunk (chatterbox-streaming's 25).
* ``adaptive``: the report's table; smaller chunks for short segments, larger
  ones for long segments.
* ``deadline`` (:mod:`.deadline`): from the device's measured costs and the
  listener's buffer; the ``rtx4090`` default.

Both accept ``first_chunk_size``: a smaller first chunk of the stream (or of
every segment) makes the first audio arrive sooner.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import ChunkPolicySpec, hookimpl

from ._adaptive import LengthBands
from .deadline import DeadlineChunkOptions, DeadlineChunkPolicy


class _FirstChunk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_chunk_size: int | None = Field(
        None, ge=1, description="size of the stream's first chunk (time to first audio)")
    first_chunk_every_segment: bool = Field(
        False, description="apply first_chunk_size to the first chunk of every segment")

    def first(self, chunk_index: int, segment_index: int) -> int | None:
        if self.first_chunk_size is None or chunk_index != 0:
            return None
        if segment_index == 0 or self.first_chunk_every_segment:
            return self.first_chunk_size
        return None


class FixedChunkOptions(_FirstChunk):
    chunk_size: int = Field(25, ge=1, description="speech tokens per chunk")


class FixedChunkPolicy:
    def __init__(self, options: FixedChunkOptions | None = None) -> None:
        self.options = options or FixedChunkOptions()

    def chunk_size(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        first = self.options.first(chunk_index, segment_index)
        return first if first is not None else self.options.chunk_size


class AdaptiveChunkOptions(_FirstChunk):
    base_chunk_size: int = Field(25, ge=1, description="chunk size for 65-128-token segments")
    bands: LengthBands = Field(
        default_factory=lambda: LengthBands(short_cap=15, long_factor=2.0, long_cap=40))


class AdaptiveChunkPolicy:
    """<=64 tokens: min(base, 15); <=128: base; longer: min(2 x base, 40)."""

    def __init__(self, options: AdaptiveChunkOptions | None = None) -> None:
        self.options = options or AdaptiveChunkOptions()

    def chunk_size(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        first = self.options.first(chunk_index, segment_index)
        if first is not None:
            return first
        return self.options.bands.value(self.options.base_chunk_size, segment_tokens)


@hookimpl
def seqopt_chunk_policies() -> list[ChunkPolicySpec]:
    return [
        ChunkPolicySpec(name="fixed", factory=FixedChunkPolicy, options=FixedChunkOptions,
                        description="the same number of speech tokens in every chunk"),
        ChunkPolicySpec(name="adaptive", factory=AdaptiveChunkPolicy, options=AdaptiveChunkOptions,
                        description="chunk size grows with the segment's length (report table)"),
        ChunkPolicySpec(name="deadline", factory=DeadlineChunkPolicy, options=DeadlineChunkOptions,
                        uses_playback=True,
                        description="each chunk as large as is ready before the buffered audio runs out "
                        "(from the device's measured costs)"),
    ]
