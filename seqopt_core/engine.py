"""What a speech engine must do: the worker under :class:`~seqopt_core.scheduler.SegmentScheduler`.

An engine turns segments of text into speech tokens and speech tokens into
audio, and nothing else. It does not decide what runs: the scheduler hands it
:class:`SegmentJob` records, asks it to run one token step of a batch of rows
(:meth:`TokenBatch.step`), and decides when a chunk of tokens is decoded
(:meth:`ChunkDecoder.decode`). It reports what it measured in the records it
returns; nothing is read back from its state afterwards.

An engine is offered by a plugin through the ``seqopt_engines`` registry hook
(:class:`~seqopt_core.strategies.EngineSpec`) and chosen in the ``[engine]``
table of a config, like every other strategy. Its own settings (a checkpoint,
a voice, sampling) are its options model; the generic ones (device, dtype,
seed, pauses, crossfade, batch size) stay in ``[synthesis]``, and the engine
receives device and dtype as an :class:`EngineRuntime`.

Nothing here imports torch or numpy at import time: a test engine that makes
sine waves (``tests/sine_engine.py``) runs the whole pipeline without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .types import Segment


@dataclass(frozen=True)
class EngineRuntime:
    """The generic settings an engine is built with (``[synthesis]`` device and dtype)."""

    device: str = "auto"
    dtype: str = "float32"


@dataclass(frozen=True)
class AttentionSettings:
    """What the engine is told about the ``attention`` slot's choice.

    Built by the core from the backend's registry record (its declared
    capabilities) and the backend object (its options): the engine never looks
    at a backend's name or guesses an attribute.
    """

    #: The backend's name in the attention slot (for messages).
    name: str
    #: The ``attn_implementation`` the engine selects for its transformer.
    attn_implementation: str
    #: The backend records the aligned heads' attention, so the alignment guard runs.
    provides_alignment: bool = False
    #: (layer, head) pairs the guard reads (empty without alignment).
    aligned_heads: tuple[tuple[int, int], ...] = ()
    #: Equal tokens in a row that make the guard force the stop token.
    repetition_run: int = 2
    #: The backend holds every layer's maps of the latest step (the stock eager cost).
    keep_all_layers: bool = False
    #: Registers the backend's kernel with the model library before first use
    #: (``None``: the implementation is built in). Called once per engine; the
    #: engine selects ``attn_implementation`` for each piece of model work and
    #: puts the previous implementation back after it (that is the removal).
    setup: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SegmentJob:
    """One segment for the engine to generate, as the scheduler hands it out.

    ``key`` is unique within a scheduler (jobs of several streams share one queue);
    ``seed`` is the run's ``synthesis.seed`` (the engine derives the segment's own
    sampling seed with :func:`segment_seed`); ``prompt_tokens`` come from the
    ``segment_context`` strategy.
    """

    key: int
    segment: Segment
    seed: int | None = None
    prompt_tokens: tuple[int, ...] | None = None
    #: Which stream the job belongs to (a number the scheduler gives each run).
    stream: int = 0
    #: The engine that makes this job's rows and audio when it is not the scheduler's
    #: own: the same loaded model in another voice (``with_voice``), so that jobs of
    #: several voices share one batch. ``None``: the scheduler's engine.
    engine: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class GeneratedSegment:
    """A segment's speech tokens and how their generation went: the one result type
    of both the one-segment and the batched paths."""

    tokens: tuple[int, ...]
    #: ``stop_token``, ``length_limit``, ``benchmark_length``, ``alignment_guard`` (engine-defined)
    stopped_by: str
    #: Text tokens the engine fed for the segment (start and stop tokens included).
    text_tokens: int = 0
    #: Seconds of token generation spent on the segment (its share of shared steps).
    t3_seconds: float = 0.0
    #: The alignment guard's record for this row (engine-defined), or ``None``.
    alignment: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TokenStep:
    """One row's outcome of one :meth:`TokenBatch.step`.

    ``token`` is the sampled speech token (``None`` when the row stopped without a
    new one); ``finished`` is set on the row's last step: it then leaves the batch.
    """

    job: SegmentJob
    token: int | None
    finished: GeneratedSegment | None = None


@dataclass(frozen=True)
class DecodedAudio:
    """Audio for one chunk of speech tokens, and what making it cost."""

    audio: Any  # float32 mono numpy array
    #: Seconds in the vocoder (S3Gen for Chatterbox).
    vocoder_seconds: float
    #: Seconds for the whole decode: vocoder plus post-processing (a watermark).
    decode_seconds: float


@runtime_checkable
class TokenBatch(Protocol):
    """Rows being generated together (continuous batching): the engine's KV caches.

    The scheduler decides each step which rows join; rows leave when they finish.
    A batch may also have ``drop(jobs)``: those jobs' rows leave now, their state
    freed, the other rows untouched (the scheduler calls it, inside
    ``work(stage="tokens")``, when a stream is closed while its rows share the
    batch; without it they run to their end unread).
    """

    @property
    def rows(self) -> int:
        """Rows in flight."""
        ...

    def step(self, joining: Sequence[SegmentJob] = ()) -> list[TokenStep]:
        """Prefill ``joining`` into the batch (sampling their first tokens), or, with
        nothing joining, run one decode step of every row in flight. Returns one
        :class:`TokenStep` per row that ran, in the order the rows joined."""
        ...

    def close(self) -> None:
        """Free the rows' state (also when abandoned mid-way)."""
        ...


@runtime_checkable
class ChunkDecoder(Protocol):
    """Speech tokens of one segment to audio, chunk by chunk (the vocoder)."""

    def decode(self, tokens: Sequence[int], context: int, *, last: bool) -> DecodedAudio:
        """Audio for ``tokens``, re-reading up to ``context`` tokens decoded before;
        ``last`` ends the segment (any held-back audio is returned too)."""
        ...


@dataclass(frozen=True)
class DecodeCall:
    """One chunk for :meth:`BatchDecodingEngine.decode_batch`: the arguments of one
    :meth:`ChunkDecoder.decode` on ``decoder`` (one of the engine's own)."""

    decoder: ChunkDecoder
    tokens: tuple[int, ...]
    context: int
    last: bool


@runtime_checkable
class BatchDecodingEngine(Protocol):
    """An engine that decodes chunks of several segments in one vocoder call.

    Declared by the engine record's ``batched_decode`` capability. The result is
    what ``[c.decoder.decode(c.tokens, c.context, last=c.last) for c in calls]``
    returns, within float32 tolerance (the decoders' state moves on the same
    way); each :class:`DecodedAudio` carries its share of the call's time. A
    decoder appears at most once in ``calls``.
    """

    def decode_batch(self, calls: Sequence[DecodeCall]) -> list[DecodedAudio]:
        ...


@runtime_checkable
class Engine(Protocol):
    """A loaded speech model, as the scheduler and the pipeline use it.

    Optionally an engine also has ``check_attention(attention)``: the pipeline calls
    it once, before any synthesis, so that an attention choice the loaded model
    cannot run (aligned heads it lacks) fails with a
    :class:`~seqopt_core.errors.ConfigError` at once instead of in a retry.

    An engine whose record declares ``voices`` also has ``with_voice(path)``: the
    engine speaking in the voice of the reference audio file ``path``, on the same
    loaded model (raising a :class:`~seqopt_core.errors.SeqoptError` that says what
    is wrong with an unusable file). Its jobs may join a batch opened by another
    voice of the same model (:attr:`SegmentJob.engine`).
    """

    #: Output sample rate in Hz.
    sample_rate: int

    def describe(self) -> dict[str, Any]:
        """What is loaded, for logs and reports: at least ``name`` and ``device``;
        ``random_weights: True`` when the weights are random (noise, not speech)."""
        ...

    def configured(self, options: Any) -> Engine:
        """This engine with other options of its own model (a validated options
        object), sharing what is loaded; ``self`` when nothing changes."""
        ...

    def work(self, attention: AttentionSettings | None = None, *,
             stage: str = "all") -> AbstractContextManager[None]:
        """Hold the model for one piece of work (a chunk's steps and decode, say):
        engines on the same weights serialize here, and ``attention`` is selected
        for the piece and put back after. Reentrant in one thread.

        ``stage`` is ``"all"`` (everything), ``"tokens"`` (token steps only) or
        ``"decode"`` (decoding only). An engine whose record declares
        ``concurrent_stages`` holds a separate lock per stage, so that one thread's
        token steps and another's decode run at the same time (the scheduler's
        overlap); any other engine may treat every stage as ``"all"``."""
        ...

    def open_batch(self, attention: AttentionSettings | None = None) -> TokenBatch:
        """An empty batch; rows join through :meth:`TokenBatch.step`."""
        ...

    def decoder(self, job: SegmentJob, *, crossfade_ms: float) -> ChunkDecoder:
        """The vocoder state of one segment."""
        ...

    def speech_token_limit(self, segment: Segment, text_tokens: int | None = None) -> int:
        """The most speech tokens ``segment`` may get (exactly this many where the engine
        runs a fixed length); ``text_tokens`` is its exact text length, if known."""
        ...

    def batch_capacity(self, jobs: Sequence[SegmentJob]) -> int:
        """How many of these segments fit in one batch in the memory free now."""
        ...

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the device running out of memory (the scheduler shrinks the batch)."""
        ...

    def reset_peak_memory(self) -> None:
        """Start measuring peak memory for a run (where the device can)."""
        ...

    def peak_memory_bytes(self) -> int | None:
        """Peak memory since :meth:`reset_peak_memory` (``None`` if unknown)."""
        ...


def segment_seed(seed: int, index: int) -> int:
    """Segment ``index``'s sampling seed under the run's ``seed``: each segment draws
    from its own generator, so its tokens do not depend on what shares its batch."""
    return (seed * 1_000_003 + index) % (2**63)


__all__ = [
    "AttentionSettings", "BatchDecodingEngine", "ChunkDecoder", "DecodeCall", "DecodedAudio", "Engine", "EngineRuntime",
    "GeneratedSegment", "SegmentJob", "TokenBatch", "TokenStep", "segment_seed",
]
