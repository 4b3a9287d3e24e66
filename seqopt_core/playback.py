"""Playback as a chunk policy sees it: how much audio is buffered ahead of the listener.

A policy that declares ``uses_playback`` (:class:`~seqopt_core.strategies.ChunkPolicySpec`)
is asked for each chunk's size with a :class:`ChunkState`: where the stream is,
how many seconds of audio handed out are still unplayed, and the
:class:`~seqopt_core.costs.CostModel` of this device. The buffer is *modeled*,
by a :class:`PlaybackClock` that advances by what each chunk is predicted to cost
as if it were streamed (T3 steps, then its decode), never by the wall clock. So
the chunk sizes are a function of the cost model, the plan and the tokens alone:
the same seed gives the same chunks and the same audio, whether a segment was
streamed or generated ahead in a batch, in one run or the next. Pure Python.

    >>> from seqopt_core.costs import CostModel
    >>> clock = PlaybackClock(CostModel(0.3, 0.0, 0.01))
    >>> clock.chunk(10, 0, segment_start=True)     # 0.4 s to make, then 0.4 s of audio
    >>> clock.playing, round(clock.buffered_seconds, 3)
    (True, 0.4)
    >>> clock.chunk(20, 10, segment_start=False)   # 0.5 s to make: a 0.1 s stall
    >>> round(clock.stalled_seconds, 3), round(clock.buffered_seconds, 3)
    (0.1, 0.8)
"""

from __future__ import annotations

from dataclasses import dataclass

from .costs import TOKENS_PER_SECOND, CostModel


@dataclass(frozen=True)
class ChunkState:
    """What a playback-aware chunk policy is told when a chunk starts."""

    #: The segment's text tokens, its index in the plan, and the chunk's index within it.
    segment_tokens: int
    segment_index: int
    chunk_index: int
    #: Tokens of context this chunk's decode re-reads (the context policy's window,
    #: at most what the segment has decoded).
    context_tokens: int
    #: The context policy's window for this chunk (what later chunks will re-read).
    context_window: int
    #: Whether the stream's first audio is out (playback has started).
    playing: bool
    #: Seconds of audio handed out that the listener has not heard yet (modeled).
    buffered_seconds: float
    #: This device's costs.
    costs: CostModel


class PlaybackClock:
    """The modeled timeline of one stream: when each chunk is ready and when its audio
    plays (see the module doc). Playback starts with the first chunk and never
    pauses except to wait (a stall) for a chunk that is not ready."""

    def __init__(self, costs: CostModel) -> None:
        self.costs = costs
        #: Modeled seconds since the stream started.
        self.now = 0.0
        #: When the audio handed out so far ends playing (``None``: nothing out yet).
        self.audio_end: float | None = None
        #: Seconds the listener waited, in all.
        self.stalled_seconds = 0.0

    @property
    def playing(self) -> bool:
        return self.audio_end is not None

    @property
    def buffered_seconds(self) -> float:
        if self.audio_end is None:
            return 0.0
        return max(0.0, self.audio_end - self.now)

    def chunk(self, new_tokens: int, context_tokens: int, *, segment_start: bool) -> None:
        """A chunk of ``new_tokens`` was made (re-reading ``context_tokens``)."""
        self.now += self.costs.chunk_seconds(new_tokens, context_tokens, prefill=segment_start)
        self._play(new_tokens / TOKENS_PER_SECOND)

    def pause(self, seconds: float) -> None:
        """Silence handed out between segments (it plays like audio)."""
        if seconds > 0 and self.audio_end is not None:
            self.audio_end += seconds

    def _play(self, seconds: float) -> None:
        if self.audio_end is None:
            self.audio_end = self.now + seconds
            return
        if self.now > self.audio_end:
            self.stalled_seconds += self.now - self.audio_end
            self.audio_end = self.now
        self.audio_end += seconds

    def state(self, segment_tokens: int, segment_index: int, chunk_index: int, *,
              context_tokens: int, context_window: int) -> ChunkState:
        return ChunkState(segment_tokens, segment_index, chunk_index, context_tokens, context_window,
                          self.playing, self.buffered_seconds, self.costs)


__all__ = ["ChunkState", "PlaybackClock"]
