"""The scheduler: which segments the engine runs each step, and when each chunk is decoded.

:class:`SegmentScheduler` sits between the :class:`~seqopt_core.pipeline.Pipeline`
(the front end: plan, events, metrics) and the engine (the worker:
:class:`~seqopt_core.engine.Engine`, which only runs token steps and vocoder
calls on what it is given). It owns

* **the queue** of segments waiting for a batched generation. Jobs of several
  independent streams share it (each :class:`~seqopt_core.engine.SegmentJob`
  names its stream), and one running :class:`~seqopt_core.engine.TokenBatch`
  serves them all: a stream that needs a result runs steps of the shared batch,
  and the results of other streams' rows wait for them;
* **each step's rows**: segments join as rows finish (continuous batching), at
  most the batch width, which follows the look-ahead ramp (2, 4, 8, ... as
  segments end) and halves, for the rest of that batch, when the device runs
  out of memory (the rows without a result start again in a narrower batch;
  none is lost or repeated);
* **failures**: a streamed segment that fails before any of its audio was handed
  out is retried once, then planned again at half the length and generated
  piece by piece; a batched generation that fails for another reason than
  memory sends its segments through that path one at a time;
* **chunks**: how many tokens make each chunk (the chunk policy), how much
  context the vocoder re-reads (the context policy), and when it runs: as soon
  as a streamed segment's chunk is full, or, for a segment generated ahead in a
  batch, when the stream reaches it.

Everything it hands back is a new record (:class:`ChunkOutput`, with the
segment's :class:`~seqopt_core.engine.GeneratedSegment` on its last chunk);
nothing is shared or mutated behind the caller's back. Pure Python: no torch.
"""

from __future__ import annotations

import itertools
import queue
import secrets
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from .costs import CostModel
from .deadline_gate import DeadlineGate
from .engine import AttentionSettings, DecodeCall, Engine, GeneratedSegment, SegmentJob
from .errors import SynthesisError
from .planner import PlannerSettings, SegmentPlanner
from .playback import PlaybackClock
from .types import Segment, SegmentPlan

#: Smallest target the retry may re-plan a failed segment to.
MIN_RETRY_TARGET = 8
#: Token steps an overlapped segment's worker runs per piece of work (``work(stage="tokens")``).
STEPS_PER_PIECE = 8


@dataclass(frozen=True)
class ChunkOutput:
    """One chunk of a segment's audio and what it cost, as the scheduler returns it."""

    audio: Any  # float32 mono numpy array
    chunk_index: int
    speech_tokens: int
    #: Token generation for this chunk (for a batched segment, its share of the batch).
    t3_seconds: float
    #: Vocoder plus post-processing (watermark) for this chunk.
    decode_seconds: float
    #: The vocoder alone (S3Gen).
    vocoder_seconds: float
    #: How long the chunk's tokens waited, generated, before their decode began.
    queue_seconds: float
    is_last: bool
    #: On the segment's last chunk: its tokens and how their generation went.
    result: GeneratedSegment | None = None
    #: On the last chunk: token generation spent before the segment's audio began
    #: (a segment generated ahead in a batch), for the segment's wall time.
    ahead_seconds: float = 0.0
    #: Tokens decoded before that the vocoder re-read as context for this chunk.
    context_tokens: int = 0


@dataclass(frozen=True)
class PlannedChunk:
    """One vocoder call a segment will make: its new tokens and the context re-read."""

    new_tokens: int
    context_tokens: int


class BatchOutOfMemory(RuntimeError):
    """A batch of one segment still ran out of memory; ``job`` is that segment."""

    def __init__(self, job: SegmentJob, cause: BaseException) -> None:
        super().__init__(f"out of memory with a batch of one: {type(cause).__name__}: {cause}")
        self.job = job
        self.cause = cause


def ramp_sizes(batch_size: int) -> Callable[[int], int]:
    """Look-ahead ramp: with ``k`` segments ended, up to ``2 ** (k + 1)`` in the batch,
    at most ``batch_size`` (a short batch first, so the first results come soon and
    the audio buffered ahead of playback grows quickly)."""
    return lambda k: max(1, min(batch_size, 2 ** (k + 1)))


class ChunkCutter:
    """Cuts one segment's tokens into chunks as the policies say (pure).

    :meth:`add` takes one token and says whether a chunk is full; :meth:`take`
    hands out the pending tokens with the chunk's index and context window. Each
    chunk's size is asked for once, when its first token arrives:
    ``chunk_size(index, context re-read, context window)``.
    """

    def __init__(self, chunk_size: Callable[[int, int, int], int],
                 context_window: Callable[[int], int]) -> None:
        self._chunk_size = chunk_size
        self._context_window = context_window
        self.pending: list[int] = []
        self.index = 0
        #: Tokens handed out so far (what a context window can re-read).
        self.decoded = 0
        self._target: int | None = None

    def add(self, token: int) -> bool:
        if self._target is None:
            window = self._context_window(self.index)
            self._target = max(1, int(self._chunk_size(self.index, min(window, self.decoded), window)))
        self.pending.append(token)
        return len(self.pending) >= self._target

    def needed(self) -> int:
        """Tokens still missing from the chunk being filled (1 before its first token,
        when its size is not asked yet)."""
        return 1 if self._target is None else max(1, self._target - len(self.pending))

    def take(self) -> tuple[list[int], int, int, int]:
        """``(tokens, chunk index, context window, context re-read)`` of the chunk (the
        re-read part is the window, at most the tokens handed out before), and start
        the next."""
        window = self._context_window(self.index)
        out = (self.pending, self.index, window, min(window, self.decoded))
        self.decoded += len(self.pending)
        self.pending, self.index, self._target = [], self.index + 1, None
        return out


class StreamPlayback:
    """One stream's modeled playback (:class:`~seqopt_core.playback.PlaybackClock`),
    with the pauses the pipeline puts between its segments."""

    def __init__(self, clock: PlaybackClock, pause_seconds: Callable[[Segment], float]) -> None:
        self.clock = clock
        self._pause_seconds = pause_seconds
        self._last: Segment | None = None

    def begin(self, segment: Segment) -> None:
        """``segment``'s audio comes next (the pause after the one before is out)."""
        if self._last is not None and segment.index != self._last.index:
            self.clock.pause(self._pause_seconds(self._last))
        self._last = segment

    def made(self, new_tokens: int, context_tokens: int, chunk_index: int) -> None:
        if new_tokens:
            self.clock.chunk(new_tokens, context_tokens, segment_start=chunk_index == 0)


_FALLBACK = object()  # a batched job that goes through the one-at-a-time path instead


@dataclass(frozen=True)
class _PlannedCall:
    """One vocoder call of a generated segment, cut before it is decoded."""

    tokens: tuple[int, ...]
    index: int
    context: int
    reread: int
    last: bool


@dataclass(frozen=True)
class SchedulerSnapshot:
    """What the scheduler holds at one moment (for a server's metrics)."""

    #: Streams running now (each :meth:`SegmentScheduler.segments` not yet closed).
    streams: int
    #: Rows in the shared token batch.
    rows: int
    #: Segments queued for the shared batch.
    queued: int


@dataclass
class _Finished:
    result: GeneratedSegment
    at: float


class StreamStopped(BaseException):
    """A stream was stopped from another thread (``AudioStream.stop``): its chunks end.

    Like :class:`GeneratorExit` it is not an error, so no retry and no ``except
    Exception`` takes it for a failure of the model; the pipeline ends the stream on it.
    """


class _SharedBatchFailed(RuntimeError):
    """The shared batch failed (not for memory) while a streamed segment was a row of it."""


class _StreamedRow:
    """A streamed segment's row in the shared batch: its tokens as the steps sample them.

    The stream reads them from :attr:`tokens` as they come. A row started again after
    the batch ran out of memory samples the same tokens again (each job has a seed):
    ``position`` counts this attempt's tokens, and the ones already there are skipped.
    """

    def __init__(self, stream: int) -> None:
        self.stream = stream
        self.tokens: list[int] = []
        self.position = 0
        self.taken = 0
        self.finished: GeneratedSegment | None = None
        self.failure: BaseException | None = None
        self.t3_seconds = 0.0
        #: Tokens the stream waits for (``None``: it is not waiting); steps stop for it.
        self.needed: int | None = None

    def receive(self, token: int | None, seconds: float) -> None:
        self.t3_seconds += seconds
        if token is None:
            return
        if self.position >= len(self.tokens):
            self.tokens.append(token)
        self.position += 1

    def feed(self, cutter: ChunkCutter) -> bool:
        """Hand the tokens not yet taken to ``cutter`` until a chunk is full (``True``)."""
        while self.taken < len(self.tokens):
            token = self.tokens[self.taken]
            self.taken += 1
            if cutter.add(token):
                return True
        return False

    @property
    def complete(self) -> bool:
        """Finished, and every token taken."""
        return self.finished is not None and self.taken == len(self.tokens)

    def ready(self) -> bool:
        """The stream waits, and what it waits for is there (or the row ended or failed)."""
        needed = self.needed
        return needed is not None and (len(self.tokens) - self.taken >= needed or self.finished is not None
                                       or self.failure is not None)

    def take_seconds(self) -> float:
        seconds, self.t3_seconds = self.t3_seconds, 0.0
        return seconds


class _StreamClock:
    """When a stream's listener runs out of audio, on :func:`time.perf_counter`'s clock:
    the moment it arrived until its first chunk is out, then the first chunk's time plus
    the seconds of audio (and pauses) handed out, as if played from the first chunk on."""

    def __init__(self) -> None:
        self.arrived = time.perf_counter()
        self.first_out: float | None = None
        self.audio_out = 0.0

    def deadline(self) -> float:
        return self.arrived if self.first_out is None else self.first_out + self.audio_out

    def handed_out(self, seconds: float) -> None:
        if self.first_out is None:
            self.first_out = time.perf_counter()
        self.audio_out += seconds


class SegmentScheduler:
    """Decides what the engine runs (see the module doc).

    ``chunk_policy``, ``context_policy`` and ``segment_context`` are the config's
    strategies; ``independent_segments`` is the segment-context record's
    declaration and ``batching`` the engine record's; ``planner`` re-plans a
    failed segment; ``batch_size`` is ``synthesis.batch_size`` (a number, or
    ``"auto"``: :meth:`Engine.batch_capacity`). ``uses_playback`` is the chunk
    policy record's declaration: each stream then models its playback with the
    :class:`~seqopt_core.costs.CostModel` that ``costs()`` returns (asked once per
    stream) and ``pause_seconds(segment)`` (the silence after a segment), and the
    policy's ``plan_chunk(state)`` sizes each chunk. ``batched_decode`` is the engine
    record's declaration: a whole text's segments generated in a batch (no look-ahead,
    :meth:`~seqopt_core.pipeline.Pipeline.synthesize`) are then decoded
    ``decode_batch_size`` segments at a time (``synthesis.decode_batch_size``; ``auto``:
    the engine's ``decode_batch_capacity()``), chunk ``k`` of each in one vocoder call.
    ``overlap`` (``synthesis.overlap``, for an engine that declares ``concurrent_stages``)
    generates tokens in another thread while chunks are decoded: a streamed segment's
    steps run in a worker thread of their own, and the shared batch is run ahead by a
    worker while the stream decodes; the same tokens and chunks, so the same audio.
    """

    def __init__(self, engine: Engine, *, attention: AttentionSettings | None, chunk_policy: Any,
                 context_policy: Any, segment_context: Any, independent_segments: bool,
                 batching: bool, planner: SegmentPlanner, crossfade_ms: float,
                 batch_size: int | str = "auto", uses_playback: bool = False,
                 batched_decode: bool = False, decode_batch_size: int | str = "auto",
                 overlap: bool = False,
                 costs: Callable[[], CostModel] | None = None,
                 pause_seconds: Callable[[Segment], float] | None = None) -> None:
        if uses_playback and costs is None:
            raise ValueError("a chunk policy that uses playback needs a cost model (costs=...)")
        self.engine = engine
        self.attention = attention
        self.chunk_policy = chunk_policy
        self.context_policy = context_policy
        self.segment_context = segment_context
        self.independent_segments = independent_segments
        self.batching_allowed = batching
        self.planner = planner
        #: The planner for a language (the pipeline's ``planner_for``), so that a failed
        #: segment is re-planned with the estimator of its own language; ``None``: ``planner``.
        self.planner_for: Callable[[str | None], SegmentPlanner] | None = None
        self.crossfade_ms = crossfade_ms
        self.batch_size = batch_size
        self.uses_playback = uses_playback
        self.batched_decode = batched_decode
        self.overlap = overlap
        #: Decodes hold only the decode stage when the token steps may run meanwhile.
        self._decode_stage = "decode" if overlap else "all"
        #: The thread that runs the shared batch's steps ahead (overlap), while it lives.
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        self.decode_batch_size = decode_batch_size
        self._costs = costs
        self._pause_seconds = pause_seconds or (lambda segment: 0.0)
        #: Each running stream's modeled playback (playback-aware chunk policies).
        self._playback: dict[int, StreamPlayback] = {}
        #: Guards the shared batch and its queue (streams may run in several threads).
        self._lock = threading.RLock()
        #: Guards the counts of streams and private rows (never held while the model runs).
        self._count_lock = threading.Lock()
        self._keys = itertools.count()
        self._stream_ids = itertools.count()
        self._queue: deque[SegmentJob] = deque()
        self._in_flight: dict[int, SegmentJob] = {}
        self._results: dict[int, Any] = {}
        self._abandoned: set[int] = set()
        self._batch: Any = None
        self._limit = 1
        self._ramp: Callable[[int], int] | None = None
        self._ended = 0
        self._streams = 0
        #: Rows of streamed segments' own one-row batches (not the shared one).
        self._private_rows = 0
        #: The batch width was halved after running out of memory (kept until the rows end).
        self._narrowed = False
        #: Streamed segments waiting to join the shared batch (they go before the queue).
        self._stream_queue: deque[SegmentJob] = deque()
        #: The shared batch's rows of streamed segments, by job key.
        self._rows_out: dict[int, _StreamedRow] = {}
        #: Each running stream's deadline (earliest first decides who gets the model).
        self._clocks: dict[int, _StreamClock] = {}
        #: Each running stream's stop signal (set from any thread: ``AudioStream.stop``).
        self._stops: dict[int, threading.Event] = {}
        gate = DeadlineGate()
        self._gates = {"tokens": gate, "decode": DeadlineGate() if overlap else gate}
        #: Streamed segments are rows of the shared batch (an engine that batches): the
        #: rows of every stream share each token step.
        self.shared_streaming = batching

    def snapshot(self) -> SchedulerSnapshot:
        """The streams, batch rows and queued segments now (read without waiting for the
        steps that run: each figure is current, the three are not one instant's)."""
        batch = self._batch
        rows = batch.rows if batch is not None else 0
        return SchedulerSnapshot(self._streams, rows + self._private_rows,
                                 len(self._queue) + len(self._stream_queue))

    # -- who gets the model next ----------------------------------------------------------

    def _deadline(self, stream: int) -> float:
        """When ``stream``'s listener runs out of audio (now, for a stream not running)."""
        clock = self._clocks.get(stream)
        return clock.deadline() if clock is not None else time.perf_counter()

    def _earliest_deadline(self) -> float:
        clocks = list(self._clocks.values())
        return min((c.deadline() for c in clocks), default=float("inf"))

    @contextmanager
    def _hold(self, stage: str, deadline: float) -> Iterator[None]:
        """The model's gate(s) for ``stage`` (``tokens``, ``decode`` or ``all``), earliest
        deadline first; one gate for both stages unless they overlap."""
        gates = (self._gates["tokens"], self._gates["decode"]) if stage == "all" else (self._gates[stage],)
        with ExitStack() as held:
            for gate in dict.fromkeys(gates):
                held.enter_context(gate.hold(deadline))
            yield

    # -- what runs ----------------------------------------------------------------------

    def jobs(self, plan: SegmentPlan, *, seed: int | None, engine: Engine | None = None) -> list[SegmentJob]:
        """One job per segment of ``plan``, for one new stream (made by ``engine``, another
        voice of the scheduler's engine, if given)."""
        stream = next(self._stream_ids)
        if seed is None:  # every job has a seed, so a row started again samples the same tokens
            seed = secrets.randbits(31)
        return [SegmentJob(next(self._keys), s, seed, stream=stream, engine=engine) for s in plan.segments]

    def _engine_for(self, job: SegmentJob) -> Any:
        """The engine that decodes ``job``: its own voice's, else the scheduler's."""
        return job.engine if job.engine is not None else self.engine

    def new_playback(self) -> StreamPlayback | None:
        """A new stream's modeled playback (``None`` unless the chunk policy uses it)."""
        if not self.uses_playback:
            return None
        assert self._costs is not None
        return StreamPlayback(PlaybackClock(self._costs()), self._pause_seconds)

    def batch_width(self, segments: Sequence[Segment]) -> int:
        """Segments per batch: 1 (one after another) when the engine cannot batch,
        there is one segment, or the segment-context strategy makes each segment
        depend on the previous one; else ``batch_size`` (``auto``: what fits)."""
        if len(segments) < 2 or not self.batching_allowed or not self.independent_segments:
            return 1
        if self.batch_size != "auto":
            return int(self.batch_size)
        return max(1, int(self.engine.batch_capacity(
            [SegmentJob(-1, s) for s in segments])))

    def segments(self, plan: SegmentPlan, *, seed: int | None, lookahead: bool, engine: Engine | None = None,
                 stop: threading.Event | None = None) -> Iterator[tuple[Segment, Iterator[ChunkOutput]]]:
        """Each segment of ``plan`` in order, with the iterator of its chunks.

        The caller exhausts each segment's chunks before asking for the next. With
        batching and ``lookahead`` the first segment is streamed alone (time to first
        audio as without batching) and the rest are generated ahead in a batch that
        ramps up; without ``lookahead`` the batch has its full width at once.
        ``engine``: the voice that speaks (see :meth:`jobs`). ``stop``, set from any
        thread, stops the stream: its rows leave the shared batch at the next token step,
        its queued segments are dropped, and its chunks end with :class:`StreamStopped`
        (no chunk is handed out after it was set).
        """
        jobs = self.jobs(plan, seed=seed, engine=engine)
        playback = self.new_playback()
        if playback is not None and jobs:
            self._playback[jobs[0].stream] = playback
        clock = _StreamClock()
        # not the scheduler's lock: a stream stepping the batch holds it, and a new stream
        # joins that batch at its next step (see _streamed_shared)
        with self._count_lock:
            self._streams += 1
        if jobs:
            self._clocks[jobs[0].stream] = clock
            if stop is not None:
                self._stops[jobs[0].stream] = stop
        last = len(plan.segments) - 1
        try:
            for segment, pieces in self._segments(jobs, plan, lookahead):
                pause = self._pause_seconds(segment) if segment.index < last else 0.0
                yield segment, self._clocked(pieces, clock, pause, stop)
        finally:
            with self._count_lock:
                self._streams -= 1
            if jobs:
                self._clocks.pop(jobs[0].stream, None)
                self._stops.pop(jobs[0].stream, None)
                self._playback.pop(jobs[0].stream, None)

    def _clocked(self, chunks: Iterator[ChunkOutput], clock: _StreamClock, pause: float,
                 stop: threading.Event | None = None) -> Iterator[ChunkOutput]:
        """``chunks``, moving the stream's deadline on by each one's audio (and the pause
        after the segment's last); none once ``stop`` is set."""
        rate = float(self.engine.sample_rate)
        try:
            for chunk in chunks:
                if stop is not None and stop.is_set():
                    raise StreamStopped()
                clock.handed_out(len(chunk.audio) / rate + (pause if chunk.is_last else 0.0))
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _segments(self, jobs: list[SegmentJob], plan: SegmentPlan,
                  lookahead: bool) -> Iterator[tuple[Segment, Iterator[ChunkOutput]]]:
        width = self.batch_width(plan.segments)
        if width <= 1:
            history: list[tuple[int, ...]] = []
            for job in jobs:
                job = replace(job, prompt_tokens=self._prompt(() if self.independent_segments else history))
                yield job.segment, self._recorded(self._with_retry(job), history)
            return
        jobs = [replace(job, prompt_tokens=self._prompt(())) for job in jobs]
        if lookahead:
            first = jobs.pop(0)
            yield first.segment, self._with_retry(first)
        generated = self._generated(jobs, width, ramp_sizes(width) if lookahead else None)
        group = 1 if lookahead else self.decode_width()
        try:
            if group > 1:
                yield from self._decoded_in_groups(generated, group)
            else:
                for job, result in generated:
                    if result is _FALLBACK:
                        yield job.segment, self._with_retry(job, shared=False)
                    else:
                        yield job.segment, self._decoded(job, result)
        except BatchOutOfMemory as exc:
            raise SynthesisError(
                f"segment {exc.job.segment.index} ({_snippet(exc.job.segment.text)}) ran out of "
                f"memory even in a batch of one: {type(exc.cause).__name__}: {exc.cause}; use a "
                "smaller planner.max_tokens or a device with more memory") from exc.cause
        finally:
            generated.close()

    def planned_chunks(self, segment: Segment, speech_tokens: int) -> list[PlannedChunk]:
        """The vocoder calls a segment of ``speech_tokens`` tokens makes, cut exactly
        as synthesis cuts them (a last call with the rest; none when nothing is left),
        as the first segment of a stream."""
        return self.planned_stream([(segment, speech_tokens)])[0]

    def planned_stream(self, segments: Sequence[tuple[Segment, int]]) -> list[list[PlannedChunk]]:
        """:meth:`planned_chunks` of each ``(segment, speech tokens)`` of one stream, in
        order (a playback-aware policy sizes each chunk by what the stream did before)."""
        playback = self.new_playback()
        return [[PlannedChunk(len(call.tokens), call.reread)
                 for call in self._cut(segment, [0] * speech_tokens, playback) if call.tokens]
                for segment, speech_tokens in segments]

    def _prompt(self, history: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
        tokens = self.segment_context.prompt_tokens(history)
        return tuple(tokens) if tokens else None

    def _cutter(self, segment: Segment, playback: StreamPlayback | None = None) -> ChunkCutter:
        """The chunk cutter of ``segment``; with ``playback``, its chunks are sized by the
        policy's ``plan_chunk`` from the stream's modeled buffer."""
        n, idx = segment.tokens, segment.index

        def window(c: int) -> int:
            return self.context_policy.context_window(n, c, idx)

        if playback is None:
            return ChunkCutter(lambda c, _reread, _window: self.chunk_policy.chunk_size(n, c, idx), window)
        playback.begin(segment)
        clock = playback.clock

        def size(c: int, reread: int, window_now: int) -> int:
            return self.chunk_policy.plan_chunk(clock.state(n, idx, c, context_tokens=reread,
                                                            context_window=window_now))

        return ChunkCutter(size, window)

    def _job_cutter(self, job: SegmentJob) -> tuple[ChunkCutter, StreamPlayback | None]:
        playback = self._playback.get(job.stream)
        return self._cutter(job.segment, playback), playback

    @staticmethod
    def _recorded(chunks: Iterator[ChunkOutput], history: list[tuple[int, ...]]) -> Iterator[ChunkOutput]:
        """``chunks``, adding the segment's tokens to ``history`` as its last chunk passes."""
        for chunk in chunks:
            if chunk.result is not None:
                history.append(chunk.result.tokens)
            yield chunk

    # -- one segment, streamed as it is generated ------------------------------------------

    def measure_chunks(self, job: SegmentJob, sizes: Sequence[int]) -> list[ChunkOutput]:
        """``job`` streamed in chunks of ``sizes`` new tokens (the last size repeats), no
        context, stopped after ``len(sizes)`` chunks (fewer if the segment ends first):
        what measuring the device's costs runs."""
        if not sizes or any(int(n) < 1 for n in sizes):
            raise ValueError(f"chunk sizes must be whole numbers of at least 1, got {list(sizes)}")
        wanted = [int(n) for n in sizes]
        cutter = ChunkCutter(lambda c, _reread, _window: wanted[min(c, len(wanted) - 1)], lambda c: 0)
        out: list[ChunkOutput] = []
        chunks = self._streamed(job, cutter)
        try:
            for chunk in chunks:
                out.append(chunk)
                if len(out) >= len(wanted):
                    break
        finally:
            chunks.close()
        return out

    def _streamed(self, job: SegmentJob, cutter: ChunkCutter | None = None, *,
                  shared: bool = True) -> Iterator[ChunkOutput]:
        """``job``'s chunks, each decoded as soon as its tokens are sampled: as a row of the
        shared batch (``shared`` and an engine that batches), else in a batch of its own.
        ``cutter`` replaces the policies' (and the modeled playback); it runs alone."""
        if cutter is not None:
            return self._streamed_in_turn(job, cutter)
        if shared and self.shared_streaming:
            return self._streamed_shared(job)
        if self.overlap:
            return self._streamed_overlapped(job)
        return self._streamed_in_turn(job)

    def _streamed_shared(self, job: SegmentJob) -> Iterator[ChunkOutput]:
        """``job`` as a row of the shared batch, its chunks decoded as they fill: the token
        steps serve every stream's rows at once (a stream that needs tokens runs them, or,
        with overlap, the batch's worker does), and each chunk is decoded when this
        stream's deadline comes first. The tokens are the ones the segment gets alone."""
        decoder = self._engine_for(job).decoder(job, crossfade_ms=self.crossfade_ms)
        cutter, playback = self._job_cutter(job)
        row = _StreamedRow(job.stream)
        self._rows_out[job.key] = row
        # no lock: a stream stepping the batch now takes the row in at its next step
        self._stream_queue.append(job)
        if self.overlap:
            with self._lock:
                self._start_worker()
        ended = False
        try:
            while True:
                row.needed = cutter.needed()  # a stream stepping now stops when this is there
                with self._lock:
                    while True:
                        full = row.feed(cutter)
                        if full or row.complete:
                            break
                        if row.failure is not None:
                            raise row.failure
                        self._raise_worker_error()
                        row.needed = cutter.needed()
                        self._advance(deadline=self._deadline(job.stream))
                    row.needed = None
                    t3_seconds = row.take_seconds()
                    result = None if full else row.finished
                if self._stop_requested(job.stream):
                    raise StreamStopped()  # not worth a decode nobody hears
                with self._hold(self._decode_stage, self._deadline(job.stream)), \
                        self.engine.work(stage=self._decode_stage):
                    chunk = self._streamed_chunk(decoder, cutter, playback, full, result, t3_seconds)
                yield chunk
                if chunk.is_last:
                    ended = True
                    return
        finally:
            with self._lock:
                self._rows_out.pop(job.key, None)
                if not ended:
                    self._cancel([job])

    def _capacity(self, jobs: Sequence[SegmentJob]) -> int:
        """Rows the shared batch may hold: ``batch_size``, or with ``auto`` what fits."""
        if self.batch_size != "auto":
            return max(1, int(self.batch_size))
        return max(1, int(self.engine.batch_capacity(list(jobs))))

    def _raise_worker_error(self) -> None:
        if self._worker_error is not None:
            error, self._worker_error = self._worker_error, None
            raise error

    def _streamed_overlapped(self, job: SegmentJob) -> Iterator[ChunkOutput]:
        """:meth:`_streamed` with the token steps in a worker thread: while the stream
        decodes a chunk (``work(stage="decode")``), the worker samples the next chunk's
        tokens (``work(stage="tokens")``, one step at a time). The tokens, the chunks and
        so the audio are those of the in-turn path."""
        engine, attention = self.engine, self.attention
        steps: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()

        def produce() -> None:
            batch = None
            try:
                with engine.work(attention, stage="tokens"):
                    batch = engine.open_batch(attention)
                joining: list[SegmentJob] = [job]
                ended = False
                while not ended and not stop.is_set():
                    # a few steps per piece of work: selecting T3's attention costs about a
                    # millisecond, and another stream's T3 work waits at most this long
                    with self._hold("tokens", self._deadline(job.stream)), \
                            engine.work(attention, stage="tokens"):
                        for _ in range(STEPS_PER_PIECE):
                            started = time.perf_counter()
                            ran = batch.step(joining)
                            spent = time.perf_counter() - started
                            joining = []
                            for step in ran:
                                steps.put((step.token, step.finished, spent))
                                spent = 0.0
                                ended = ended or step.finished is not None
                            ended = ended or not ran  # no row left: nothing more will come
                            if ended or stop.is_set():
                                break
            except BaseException as exc:  # noqa: BLE001 - handed to the stream, which raises it
                steps.put(exc)
            finally:
                if batch is not None:
                    with engine.work(attention, stage="tokens"):
                        batch.close()

        worker = threading.Thread(target=produce, name=f"seqopt-tokens-{job.key}", daemon=True)
        self._count_private(1)
        worker.start()
        try:
            decoder = self._engine_for(job).decoder(job, crossfade_ms=self.crossfade_ms)
            cutter, playback = self._job_cutter(job)
            result: GeneratedSegment | None = None
            while True:
                t3_seconds, full = 0.0, False
                while result is None and not full:
                    item = steps.get()
                    if isinstance(item, BaseException):
                        raise item
                    token, finished, spent = item
                    t3_seconds += spent
                    if token is not None:
                        full = cutter.add(token)
                    if finished is not None:
                        result = finished
                with self._hold("decode", self._deadline(job.stream)), \
                        engine.work(stage="decode"):  # the worker's steps go on meanwhile
                    chunk = self._streamed_chunk(decoder, cutter, playback, full, result, t3_seconds)
                yield chunk
                if chunk.is_last:
                    return
        finally:
            stop.set()
            worker.join()  # the worker ends after its current step and frees the KV cache
            self._count_private(-1)

    def _streamed_in_turn(self, job: SegmentJob, cutter: ChunkCutter | None = None) -> Iterator[ChunkOutput]:
        """Each chunk's steps and decode as one piece of model work, in this thread."""
        engine, attention = self.engine, self.attention
        batch = engine.open_batch(attention)
        self._count_private(1)
        try:
            decoder = self._engine_for(job).decoder(job, crossfade_ms=self.crossfade_ms)
            playback: StreamPlayback | None = None
            if cutter is None:
                cutter, playback = self._job_cutter(job)
            result: GeneratedSegment | None = None
            joining: list[SegmentJob] = [job]
            while True:
                with self._hold("all", self._deadline(job.stream)), engine.work(attention):
                    started = time.perf_counter()
                    full = False
                    while result is None and not full:
                        for step in batch.step(joining):
                            if step.token is not None:
                                full = cutter.add(step.token)
                            if step.finished is not None:
                                result = step.finished
                        joining = []
                    t3_seconds = time.perf_counter() - started
                    chunk = self._streamed_chunk(decoder, cutter, playback, full, result, t3_seconds)
                yield chunk
                if chunk.is_last:
                    return
        finally:
            self._count_private(-1)
            batch.close()  # releases the KV cache when the caller stops early

    def _count_private(self, change: int) -> None:
        with self._count_lock:
            self._private_rows += change

    @staticmethod
    def _streamed_chunk(decoder: Any, cutter: ChunkCutter, playback: StreamPlayback | None, full: bool,
                        result: GeneratedSegment | None, t3_seconds: float) -> ChunkOutput:
        """Cut and decode a streamed chunk: the last one unless it is ``full`` (then
        ``result`` is set); the modeled playback moves on."""
        last = not full
        tokens, index, context, reread = cutter.take()
        decoded = decoder.decode(tokens, context, last=last)
        if playback is not None:
            playback.made(len(tokens), reread, index)
        return ChunkOutput(decoded.audio, index, len(tokens), t3_seconds, decoded.decode_seconds,
                           decoded.vocoder_seconds, 0.0, last, result if last else None,
                           context_tokens=reread)

    def _with_retry(self, job: SegmentJob, *, shared: bool = True) -> Iterator[ChunkOutput]:
        """``job``'s chunks; retried once (in a batch of its own), then split, while nothing
        was handed out. ``shared=False``: in a batch of its own from the start."""
        last_error: Exception | None = None
        for attempt in (1, 2):
            emitted = False
            try:
                for chunk in self._streamed(job, shared=shared and attempt == 1):
                    emitted = True
                    yield chunk
                return
            except SynthesisError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the model code
                if emitted:
                    raise SynthesisError(
                        f"segment {job.segment.index} ({_snippet(job.segment.text)}) failed after "
                        f"part of its audio was streamed: {type(exc).__name__}: {exc}") from exc
                last_error = exc
                if attempt == 1:
                    continue
        assert last_error is not None
        yield from self._split(job, last_error)

    def _split(self, job: SegmentJob, error: Exception) -> Iterator[ChunkOutput]:
        """The failed segment planned again at half its length, piece by piece; its
        pieces' chunks come out as one segment's (one result on the last chunk)."""
        segment = job.segment
        target = max(MIN_RETRY_TARGET, segment.tokens // 2)
        settings = PlannerSettings(target_tokens=target, max_tokens=max(target, segment.tokens - 1),
                                   split_threshold_tokens=target)
        base = self.planner_for(segment.language) if self.planner_for is not None else self.planner
        splitter = SegmentPlanner(base.splitter, base.estimator, settings, language=segment.language)
        try:
            parts = splitter.plan(segment.text).segments
        except Exception:  # noqa: BLE001 - cannot split further
            parts = ()
        if len(parts) < 2:
            raise SynthesisError(
                f"segment {segment.index} ({_snippet(segment.text)}) failed twice and cannot be "
                f"split further: {type(error).__name__}: {error}") from error
        tokens: list[int] = []
        t3_seconds, text_tokens, stopped_by = 0.0, 0, "stop_token"
        for n, part in enumerate(parts):
            piece = Segment(segment.index, part.text, segment.start + part.start,
                            segment.start + part.end, part.tokens, segment.boundary, segment.language)
            try:
                chunks = list(self._streamed(replace(job, key=next(self._keys), segment=piece), shared=False))
            except Exception as exc:  # noqa: BLE001
                raise SynthesisError(
                    f"segment {segment.index} ({_snippet(segment.text)}) failed, also when split "
                    f"in {len(parts)}: {type(exc).__name__}: {exc}") from exc
            final = n == len(parts) - 1
            for chunk in chunks:
                if chunk.result is not None:
                    tokens.extend(chunk.result.tokens)
                    t3_seconds += chunk.result.t3_seconds
                    text_tokens += chunk.result.text_tokens
                    stopped_by = chunk.result.stopped_by
                if chunk.is_last and final:
                    whole = GeneratedSegment(tuple(tokens), stopped_by, text_tokens, t3_seconds)
                    yield replace(chunk, result=whole)
                else:
                    yield replace(chunk, is_last=False, result=None)

    # -- segments generated ahead in the shared batch -----------------------------------------

    def _cut(self, segment: Segment, tokens: Sequence[int],
             playback: StreamPlayback | None) -> list[_PlannedCall]:
        """A generated segment's vocoder calls, cut exactly as a streamed segment is cut
        (the same sizes and the same modeled playback, advanced in the same order)."""
        cutter = self._cutter(segment, playback)
        calls: list[_PlannedCall] = []

        def take(last: bool) -> None:
            pending, index, context, reread = cutter.take()
            if playback is not None:
                playback.made(len(pending), reread, index)
            calls.append(_PlannedCall(tuple(pending), index, context, reread, last))

        for token in tokens:
            if cutter.add(token):
                take(last=False)
        take(last=True)
        return calls

    @staticmethod
    def _output(call: _PlannedCall, decoded: Any, finished: _Finished, waited: float) -> ChunkOutput:
        result = finished.result
        rate = result.t3_seconds / len(result.tokens) if result.tokens else 0.0
        return ChunkOutput(decoded.audio, call.index, len(call.tokens), rate * len(call.tokens),
                           decoded.decode_seconds, decoded.vocoder_seconds, waited, call.last,
                           result if call.last else None, result.t3_seconds if call.last else 0.0,
                           context_tokens=call.reread)

    def _decoded(self, job: SegmentJob, finished: _Finished) -> Iterator[ChunkOutput]:
        """The audio of tokens generated earlier, chunk by chunk exactly as a streamed
        segment is cut and decoded (so it is the same audio); each chunk is one
        piece of model work, made when the caller asks for it."""
        decoder = self._engine_for(job).decoder(job, crossfade_ms=self.crossfade_ms)
        for call in self._cut(job.segment, finished.result.tokens, self._playback.get(job.stream)):
            if self._stop_requested(job.stream):
                raise StreamStopped()
            with self._hold(self._decode_stage, self._deadline(job.stream)), \
                    self.engine.work(stage=self._decode_stage):
                waited = time.perf_counter() - finished.at
                decoded = decoder.decode(list(call.tokens), call.context, last=call.last)
            yield self._output(call, decoded, finished, waited)

    def decode_width(self) -> int:
        """Segments decoded together when a whole text is made at once (1: one at a time)."""
        if not self.batched_decode:
            return 1
        if self.decode_batch_size != "auto":
            return max(1, int(self.decode_batch_size))
        capacity = getattr(self.engine, "decode_batch_capacity", None)
        return max(1, int(capacity())) if capacity is not None else 1

    def _decoded_in_groups(self, generated: Iterator[tuple[SegmentJob, Any]],
                           width: int) -> Iterator[tuple[Segment, Iterator[ChunkOutput]]]:
        """The segments of ``generated`` in order, ``width`` consecutive ones decoded
        together (:meth:`_decode_group`); a segment sent one at a time goes alone."""
        group: list[tuple[SegmentJob, _Finished]] = []

        def flush() -> Iterator[tuple[Segment, Iterator[ChunkOutput]]]:
            members = list(group)
            group.clear()
            if members:
                for (job, _), chunks in zip(members, self._decode_group(members), strict=True):
                    yield job.segment, iter(chunks)

        for job, result in generated:
            if result is _FALLBACK:
                yield from flush()
                yield job.segment, self._with_retry(job, shared=False)
                continue
            group.append((job, result))
            if len(group) >= width:
                yield from flush()
        yield from flush()

    def _decode_group(self, group: Sequence[tuple[SegmentJob, _Finished]]) -> list[list[ChunkOutput]]:
        """Each segment's chunks, cut as :meth:`_decoded` cuts them, decoded in rounds:
        chunk ``k`` of every segment that has one in one
        :meth:`~seqopt_core.engine.BatchDecodingEngine.decode_batch` call."""
        engine: Any = self.engine
        plans = [(finished, self._engine_for(job).decoder(job, crossfade_ms=self.crossfade_ms),
                  self._cut(job.segment, finished.result.tokens, self._playback.get(job.stream)))
                 for job, finished in group]
        outputs: list[list[ChunkOutput]] = [[] for _ in plans]
        for r in range(max(len(calls) for _, _, calls in plans)):
            members = [(i, finished, decoder, calls[r]) for i, (finished, decoder, calls) in enumerate(plans)
                       if r < len(calls)]
            deadline = min(self._deadline(job.stream) for job, _ in group)
            with self._hold(self._decode_stage, deadline), engine.work(stage=self._decode_stage):
                started = time.perf_counter()
                decoded = engine.decode_batch([DecodeCall(decoder, call.tokens, call.context, call.last)
                                               for _, _, decoder, call in members])
            for (i, finished, _, call), audio in zip(members, decoded, strict=True):
                outputs[i].append(self._output(call, audio, finished, started - finished.at))
        return outputs

    def _generated(self, jobs: list[SegmentJob], width: int,
                   ramp: Callable[[int], int] | None) -> Iterator[tuple[SegmentJob, Any]]:
        """``(job, result)`` for every job, in job order, lazily: the jobs join the
        shared queue, and each result is waited for by running steps of the shared
        batch. A result is a :class:`_Finished` or ``_FALLBACK``."""
        with self._lock:
            if self._batch is None and not self._queue:
                self._limit, self._ramp, self._ended = width, ramp, 0
            self._queue.extend(jobs)
            if self.overlap:
                self._start_worker()
        done = 0
        try:
            for job in jobs:
                result = self._wait(job)
                done += 1
                yield job, result
        finally:
            self._cancel(jobs[done:])

    def _start_worker(self) -> None:
        """Run the shared batch ahead in a worker thread (overlap) until nothing is left
        to generate; the streams meanwhile decode what is ready (called with the lock)."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._worker = threading.Thread(target=self._run_ahead, name="seqopt-batch", daemon=True)
        self._worker.start()

    def _run_ahead(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                if self._worker is not me:
                    return
                if not self._queue and not self._stream_queue and (self._batch is None or not self._batch.rows):
                    self._worker = None
                    return
                try:
                    # a few steps at a time: the streams read their rows' tokens in between
                    self._advance(max_steps=STEPS_PER_PIECE, deadline=self._earliest_deadline())
                except BaseException as exc:  # noqa: BLE001 - raised to the next stream that waits
                    self._worker_error, self._worker = exc, None
                    return
            time.sleep(0)  # let a waiting stream take the lock between stretches

    def _wait(self, job: SegmentJob) -> Any:
        """Run the shared batch until ``job`` has a result; take it."""
        with self._lock:
            while job.key not in self._results:
                if self._stop_requested(job.stream):
                    raise StreamStopped()
                self._raise_worker_error()
                if job.key not in self._in_flight and all(j.key != job.key for j in self._queue):
                    raise SynthesisError(f"segment {job.segment.index} is neither queued nor "
                                         "generating (a scheduler bug; please report it)")
                self._advance(deadline=self._deadline(job.stream))
            result = self._results.pop(job.key)
        if isinstance(result, BaseException):
            raise result
        return result

    def _width(self) -> int:
        width = self._limit
        if self._ramp is not None:
            width = min(width, self._ramp(self._ended))
        return max(1, width)

    def _advance(self, *, max_steps: int | None = None, deadline: float | None = None) -> None:
        """Steps of the shared batch, in one piece of model work, until a row ends, or a
        waiting stream has the tokens it waits for, or ``max_steps`` ran. Streamed
        segments join first (up to the batch's memory limit, not the look-ahead ramp);
        ``deadline`` is the asking stream's (the model goes to the earliest)."""
        engine = self.engine
        stage = "tokens" if self.overlap else "all"
        with self._hold(stage, time.perf_counter() if deadline is None else deadline), \
                engine.work(self.attention, stage=stage):
            if self._batch is None:
                if not self._queue and not self._narrowed:  # streamed segments only: as wide as fits
                    self._limit, self._ramp, self._ended = self._capacity(list(self._stream_queue)[:1]), None, 0
                self._batch = engine.open_batch(self.attention)
            ran = 0
            while True:
                if self._stops and self._drop_stopped():
                    return  # the stopped streams' threads end; the others ask again
                joining: list[SegmentJob] = []
                while self._stream_queue and self._batch.rows + len(joining) < self._limit:
                    joining.append(self._stream_queue.popleft())
                free = self._width() - self._batch.rows - len(joining)
                while self._queue and free > 0:
                    joining.append(self._queue.popleft())
                    free -= 1
                if not joining and not self._batch.rows:
                    return  # nothing to run (the waited-for job was failed or cancelled)
                started = time.perf_counter()
                try:
                    steps = self._batch.step(joining)
                except Exception as exc:  # noqa: BLE001 - out of memory, or any failure
                    self._failed(exc, joining)
                    return
                now = time.perf_counter()
                ran += 1
                for job in joining:
                    self._in_flight[job.key] = job
                share = (now - started) / max(1, len(steps))  # each row's share of the step
                ended = False
                for step in steps:
                    key = step.job.key
                    row = self._rows_out.get(key)
                    if row is not None:
                        row.receive(step.token, share)
                    if step.finished is None:
                        continue
                    self._in_flight.pop(key, None)
                    self._ended += 1
                    ended = True
                    if key in self._abandoned:
                        self._abandoned.discard(key)
                    elif row is not None:
                        row.finished = step.finished
                    else:
                        self._results[key] = _Finished(step.finished, now)
                if not self._batch.rows and not self._queue and not self._stream_queue:
                    self._close_batch()
                    self._narrowed = False  # what ran out of memory is done: the next batch is new
                if ended or (max_steps is not None and ran >= max_steps) or self._a_stream_is_ready():
                    return

    def _stop_requested(self, stream: int) -> bool:
        stop = self._stops.get(stream)
        return stop is not None and stop.is_set()

    def _drop_stopped(self) -> bool:
        """Streams stopped from another thread leave the shared batch now: their rows are
        dropped, their queued segments go, and their streamed rows are told (called by
        :meth:`_advance`, with the lock and the model held). Whether there were any."""
        stopped = {stream for stream, stop in list(self._stops.items()) if stop.is_set()}
        if not stopped:
            return False
        told = False
        for row in list(self._rows_out.values()):
            if row.stream in stopped and row.failure is None:
                row.failure, told = StreamStopped(), True
        keys = {j.key for j in (*self._queue, *self._stream_queue, *self._in_flight.values())
                if j.stream in stopped}
        if not keys:
            return told
        self._unqueue(keys)
        self._drop_rows(keys)
        if self._batch is not None and not self._batch.rows and not self._queue and not self._stream_queue:
            self._close_batch()
        return True

    def _a_stream_is_ready(self) -> bool:
        return any(row.ready() for row in list(self._rows_out.values()))

    def _failed(self, exc: Exception, joining: list[SegmentJob]) -> None:
        """A step raised: the rows without a result start again narrower (out of
        memory), or go one at a time through the retry path (anything else)."""
        pending = sorted([*self._in_flight.values(), *joining], key=lambda j: j.key)
        in_use = len(pending) or self._width()  # the rows the failed step held
        self._in_flight.clear()
        self._close_batch()
        live = [j for j in pending if j.key not in self._abandoned]
        self._abandoned.difference_update(j.key for j in pending)
        streamed = [j for j in live if j.key in self._rows_out]
        ahead = [j for j in live if j.key not in self._rows_out]
        for job in streamed:  # they start again from their first token, which they skip
            self._rows_out[job.key].position = 0
        if self.engine.is_out_of_memory(exc):
            if in_use <= 1:
                if live:
                    self._fail_job(live[0], BatchOutOfMemory(live[0], exc))
                self._stream_queue.extendleft(reversed([j for j in streamed if j is not live[0]]))
                self._queue.extendleft(reversed([j for j in ahead if j is not live[0]]))
                return
            self._limit, self._ended, self._narrowed = max(1, in_use // 2), 0, True
            self._stream_queue.extendleft(reversed(streamed))
            self._queue.extendleft(reversed(ahead))
            return
        arrived: list[SegmentJob] = []
        while self._stream_queue:  # (a stream may add one meanwhile: it runs in the next batch)
            arrived.append(self._stream_queue.popleft())
        waiting = streamed + arrived + ahead + list(self._queue)
        generated_ahead = [j.segment.index for j in ahead + list(self._queue)]
        self._queue.clear()
        if generated_ahead:  # (a streamed segment is retried alone, as it always was)
            warnings.warn(f"batched generation of segments {generated_ahead} failed "
                          f"({type(exc).__name__}: {exc}); generating them one at a time",
                          RuntimeWarning, stacklevel=4)
        for job in waiting:
            self._fail_job(job, _SharedBatchFailed(f"{type(exc).__name__}: {exc}"))

    def _fail_job(self, job: SegmentJob, error: BaseException) -> None:
        """A job's generation in the shared batch failed: a streamed row is told
        ``error``; a look-ahead job gets ``_FALLBACK`` (one at a time), or the
        out-of-memory error of a batch of one."""
        row = self._rows_out.get(job.key)
        if row is not None:
            row.failure = error
        elif isinstance(error, BatchOutOfMemory):
            self._results[job.key] = error
        else:
            self._results[job.key] = _FALLBACK

    def _cancel(self, jobs: Sequence[SegmentJob]) -> None:
        """A stream stopped early: drop its jobs from the queue and its results; rows it
        has in flight are dropped with the batch if no other stream's rows share it."""
        if not jobs:
            return
        keys = {j.key for j in jobs}
        with self._lock:
            self._unqueue(keys)
            for key in keys:
                self._results.pop(key, None)
            ours = [key for key in self._in_flight if key in keys]
            if len(ours) == len(self._in_flight) and not self._queue and not self._stream_queue:
                self._in_flight.clear()
                self._close_batch()  # frees the KV cache now
            elif ours and getattr(self._batch, "drop", None) is None:
                self._abandoned.update(ours)  # other streams' rows share the batch: ours run on, unread
            elif ours:  # other streams' rows share the batch: ours leave it now
                with self.engine.work(self.attention, stage="tokens" if self.overlap else "all"):
                    self._drop_rows(keys)

    def _unqueue(self, keys: set[int]) -> None:
        """The jobs of ``keys`` leave both queues (called with the lock)."""
        self._queue = deque(j for j in self._queue if j.key not in keys)
        for job in [j for j in list(self._stream_queue) if j.key in keys]:
            self._stream_queue.remove(job)  # in place: a stream may add one meanwhile

    def _drop_rows(self, keys: set[int]) -> None:
        """The rows of ``keys`` in flight leave the shared batch (called with the lock and
        the model held): freed now where the batch can drop rows, else run to their end
        unread."""
        ours = [key for key in self._in_flight if key in keys]
        if not ours:
            return
        drop = getattr(self._batch, "drop", None)
        if drop is None:
            self._abandoned.update(ours)
        else:
            drop([self._in_flight.pop(key) for key in ours])

    def _close_batch(self) -> None:
        if self._batch is not None:
            batch, self._batch = self._batch, None
            batch.close()


def _snippet(text: str, width: int = 50) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


__all__ = ["BatchOutOfMemory", "ChunkCutter", "ChunkOutput", "MIN_RETRY_TARGET", "PlannedChunk",
           "SchedulerSnapshot", "SegmentScheduler", "StreamPlayback", "StreamStopped", "ramp_sizes"]
