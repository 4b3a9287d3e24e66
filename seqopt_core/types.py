"""Plain data types shared by the core and every plugin.

Nothing here imports anything heavier than the standard library, so plugins and
apps can use these types on the text path without pulling in torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: Why a segment ends where it ends, strongest first. ``end`` marks the last
#: segment of a text. The engine uses it to choose the pause after a segment.
BoundaryKind = Literal["paragraph", "sentence", "clause", "word", "end"]
BOUNDARY_KINDS: tuple[BoundaryKind, ...] = ("paragraph", "sentence", "clause", "word", "end")


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range ``[start, end)`` into a source text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid span [{self.start}, {self.end})")

    def text(self, source: str) -> str:
        """The characters of ``source`` this span covers."""
        return source[self.start : self.end]

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence found by a splitter: its text and where it lies in the source."""

    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Segment:
    """One unit of synthesis: a piece of the source text the model receives on its own.

    ``text == source[start:end]`` always holds. Segments never begin or end with
    whitespace; what lies between two segments is whitespace only.
    """

    index: int
    text: str
    start: int
    end: int
    tokens: int
    boundary: BoundaryKind
    #: The language the segment is spoken in (a code such as ``en``; the planner's,
    #: from ``synthesis.language``); ``None``: the engine's default.
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    """The planner's answer for one text: its segments and the settings that made them."""

    segments: tuple[Segment, ...]
    splitter: str
    estimator: str
    target_tokens: int
    max_tokens: int
    source_length: int = 0
    planning_seconds: float = field(default=0.0, compare=False)
    #: The language the text was planned for (``None``: not given, the engine's default).
    language: str | None = None

    @property
    def total_tokens(self) -> int:
        """Sum of the segments' token counts (each counts its own start/stop tokens)."""
        return sum(s.tokens for s in self.segments)

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self):
        return iter(self.segments)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape printed by ``seqopt plan --json``."""
        return {
            # each segment's language is the plan's, given once
            "segments": [{k: v for k, v in s.to_dict().items() if k != "language" or v != self.language}
                         for s in self.segments],
            "splitter": self.splitter,
            "estimator": self.estimator,
            "target_tokens": self.target_tokens,
            "max_tokens": self.max_tokens,
            "total_tokens": self.total_tokens,
            "language": self.language,
        }


# --- lifecycle events -------------------------------------------------------
# Delivered to observer hooks (``seqopt_chunk_emitted`` and friends). The engine
# fills them; monitors read them. Times are seconds, audio lengths seconds.


@dataclass(frozen=True, slots=True)
class ChunkEvent:
    """One chunk of audio left the engine, and what it cost.

    ``generate_seconds`` is the chunk's whole model time (``t3_seconds`` +
    ``decode_seconds``); ``decode_seconds`` is the vocoder plus post-processing
    (the watermark), ``s3gen_seconds`` the vocoder alone; ``queue_seconds`` is how
    long its tokens waited, generated, before their decode began (a segment
    generated ahead in a batch waits for the stream to reach it; 0 when streamed).
    """

    segment_index: int
    chunk_index: int
    speech_tokens: int
    audio_seconds: float
    generate_seconds: float
    since_start_seconds: float
    is_first_audio: bool = False
    t3_seconds: float = 0.0
    decode_seconds: float = 0.0
    s3gen_seconds: float = 0.0
    queue_seconds: float = 0.0
    #: Tokens decoded before that the vocoder re-read as context (its call decoded
    #: ``context_tokens + speech_tokens`` tokens after the voice prompt).
    context_tokens: int = 0


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    """One segment is fully synthesized."""

    segment: Segment
    chunks: int
    speech_tokens: int
    audio_seconds: float
    wall_seconds: float
    stopped_by: str = "stop_token"

    @property
    def rtf(self) -> float:
        """Real-time factor: wall seconds per second of audio (lower is faster)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else float("inf")


@dataclass(frozen=True, slots=True)
class GenerationEvent:
    """A whole text is synthesized (or the stream was closed early)."""

    plan: SegmentPlan
    segments: int
    chunks: int
    audio_seconds: float
    wall_seconds: float
    time_to_first_audio: float | None
    peak_memory_bytes: int | None = None
    completed: bool = True
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rtf(self) -> float:
        """Real-time factor of the whole run (lower is faster)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else float("inf")


@dataclass(frozen=True, slots=True)
class SequenceOptimizationMetrics:
    """The design report's per-run summary of what segmentation did.

    ``attention_memory_saved_mb`` is an estimate, not a measurement: the memory of
    one layer's eager attention matrices (heads x L^2 float32, both CFG rows) for
    the whole text as one sequence, minus the largest such matrix among the
    segments (only one segment is in flight at a time). ``rtf_improvement`` needs a
    baseline run and is ``None`` until a comparison fills it.
    """

    original_length: int
    optimized_segments: int
    total_tokens_processed: int
    sequence_split_time: float
    attention_memory_saved_mb: float
    rtf_improvement: float | None = None


def attention_matrix_mb(sequence_tokens: int, heads: int = 16, rows: int = 2) -> float:
    """Megabytes of one layer's float32 attention matrices for a sequence."""
    return heads * rows * sequence_tokens * sequence_tokens * 4 / 2**20
