"""The ``deadline`` chunk policy: each chunk as large as can be made before the audio
already handed out runs out, from the device's measured costs.

A vocoder call costs a fixed part (the voice prompt re-run, the flow-matching
steps) plus a part per token; a streamed token also costs a T3 step. Small
chunks multiply the fixed part; large ones make the listener wait. With the
:class:`~seqopt_core.costs.CostModel` and the modeled playback buffer of a
:class:`~seqopt_core.playback.ChunkState`:

* **the first chunk** (nothing plays yet) is the smallest that can be followed
  without a stall: ``n* = (fixed + per_token x context) / (budget - marginal)``
  tokens, where ``budget`` is 40 ms of audio per token times ``safety`` and
  ``marginal`` what one more token costs (a T3 step plus its share of the decode).
  Any smaller first chunk leaves too little audio to hide the next call behind,
  and every chunk after it shrinks until playback stalls;
* **later chunks** are the largest whose cost fits in ``safety`` x the buffered
  audio (never smaller than ``n*``: when the buffer is short a stall is coming
  anyway, and ``n*`` is the size that recovers from it), so the buffer grows
  and the calls per second of audio fall as the stream goes on;
* on a device that **cannot keep real time** (``marginal >= budget``) stalls
  cannot be avoided: the first chunk is ``min_chunk_tokens`` (first audio soonest)
  and every later one ``max_chunk_tokens``, the fewest vocoder calls and so the
  least total time.

``prefer = "throughput"`` makes every chunk ``max_chunk_tokens`` (fewest calls;
first audio later). The chunk sizes follow from the cost model, the plan and the
tokens only (the buffer is modeled, not timed), so a seed gives the same audio
every run.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seqopt_core.costs import TOKENS_PER_SECOND
from seqopt_core.playback import ChunkState


class DeadlineChunkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefer: Literal["latency", "throughput"] = Field(
        "latency", description="latency: small first chunk, then as large as the deadline allows; "
        "throughput: every chunk max_chunk_tokens")
    min_chunk_tokens: int = Field(8, ge=1, le=1000, description="smallest chunk (first audio on a slow device)")
    max_chunk_tokens: int = Field(200, ge=1, le=4000, description="largest chunk (8 s of audio)")
    first_chunk_tokens: int | None = Field(
        None, ge=1, le=4000, description="the stream's first chunk (default: the smallest that can be "
        "followed without a stall)")
    safety: float = Field(0.8, gt=0.0, le=1.0, allow_inf_nan=False,
                          description="share of the buffered audio a chunk may take to make (slack for noise)")

    @model_validator(mode="after")
    def _ordered(self) -> DeadlineChunkOptions:
        if self.min_chunk_tokens > self.max_chunk_tokens:
            raise ValueError(f"min_chunk_tokens ({self.min_chunk_tokens}) must not exceed "
                             f"max_chunk_tokens ({self.max_chunk_tokens})")
        return self


class DeadlineChunkPolicy:
    """See the module doc."""

    def __init__(self, options: DeadlineChunkOptions | None = None) -> None:
        self.options = options or DeadlineChunkOptions()

    def _clamp(self, n: float) -> int:
        o = self.options
        return int(min(o.max_chunk_tokens, max(o.min_chunk_tokens, n)))

    def steady_tokens(self, state: ChunkState) -> int | None:
        """``n*``: the smallest chunk that plays at least as long as it takes to make
        (``None`` when the device cannot keep real time)."""
        costs = state.costs
        budget = self.options.safety / TOKENS_PER_SECOND
        if costs.marginal_seconds >= budget:
            return None
        fixed = costs.decode_seconds(state.context_window)
        return math.ceil(fixed / (budget - costs.marginal_seconds))

    def plan_chunk(self, state: ChunkState) -> int:
        o = self.options
        if o.prefer == "throughput":
            return o.max_chunk_tokens
        steady = self.steady_tokens(state)
        if not state.playing:
            if o.first_chunk_tokens is not None:
                return o.first_chunk_tokens
            return self._clamp(o.min_chunk_tokens if steady is None else steady)
        if steady is None:
            return o.max_chunk_tokens
        costs = state.costs
        room = o.safety * state.buffered_seconds - costs.decode_seconds(state.context_tokens)
        if state.chunk_index == 0:
            room -= costs.t3_prefill_seconds
        fits = math.floor(room / costs.marginal_seconds) if room > 0 else 0
        return self._clamp(max(fits, steady))

    def chunk_size(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
        """Without a playback state (a caller that does not model playback): the size
        for a stream that cannot keep real time."""
        o = self.options
        first = chunk_index == 0 and segment_index == 0
        if o.prefer == "throughput":
            return o.max_chunk_tokens
        if first:
            return o.first_chunk_tokens or o.min_chunk_tokens
        return o.max_chunk_tokens
