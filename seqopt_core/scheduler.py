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
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .engine import AttentionSettings, Engine, GeneratedSegment, SegmentJob
from .errors import SynthesisError
from .planner import PlannerSettings, SegmentPlanner
from .types import Segment, SegmentPlan

#: Smallest target the retry may re-plan a failed segment to.
MIN_RETRY_TARGET = 8


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
    hands out the pending tokens with the chunk's index and context window.
    """

    def __init__(self, chunk_size: Callable[[int], int], context_window: Callable[[int], int]) -> None:
        self._chunk_size = chunk_size
        self._context_window = context_window
        self.pending: list[int] = []
        self.index = 0
        #: Tokens handed out so far (what a context window can re-read).
        self.decoded = 0

    def add(self, token: int) -> bool:
        self.pending.append(token)
        return len(self.pending) >= self._chunk_size(self.index)

    def take(self) -> tuple[list[int], int, int, int]:
        """``(tokens, chunk index, context window, context re-read)`` of the chunk (the
        re-read part is the window, at most the tokens handed out before), and start
        the next."""
        window = self._context_window(self.index)
        out = (self.pending, self.index, window, min(window, self.decoded))
        self.decoded += len(self.pending)
        self.pending, self.index = [], self.index + 1
        return out


_FALLBACK = object()  # a batched job that goes through the one-at-a-time path instead


@dataclass
class _Finished:
    result: GeneratedSegment
    at: float


class SegmentScheduler:
    """Decides what the engine runs (see the module doc).

    ``chunk_policy``, ``context_policy`` and ``segment_context`` are the config's
    strategies; ``independent_segments`` is the segment-context record's
    declaration and ``batching`` the engine record's; ``planner`` re-plans a
    failed segment; ``batch_size`` is ``synthesis.batch_size`` (a number, or
    ``"auto"``: :meth:`Engine.batch_capacity`).
    """

    def __init__(self, engine: Engine, *, attention: AttentionSettings | None, chunk_policy: Any,
                 context_policy: Any, segment_context: Any, independent_segments: bool,
                 batching: bool, planner: SegmentPlanner, crossfade_ms: float,
                 batch_size: int | str = "auto") -> None:
        self.engine = engine
        self.attention = attention
        self.chunk_policy = chunk_policy
        self.context_policy = context_policy
        self.segment_context = segment_context
        self.independent_segments = independent_segments
        self.batching_allowed = batching
        self.planner = planner
        self.crossfade_ms = crossfade_ms
        self.batch_size = batch_size
        #: Guards the shared batch and its queue (streams may run in several threads).
        self._lock = threading.RLock()
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

    # -- what runs ----------------------------------------------------------------------

    def jobs(self, plan: SegmentPlan, *, seed: int | None) -> list[SegmentJob]:
        """One job per segment of ``plan``, for one new stream."""
        stream = next(self._stream_ids)
        return [SegmentJob(next(self._keys), s, seed, stream=stream) for s in plan.segments]

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

    def segments(self, plan: SegmentPlan, *, seed: int | None,
                 lookahead: bool) -> Iterator[tuple[Segment, Iterator[ChunkOutput]]]:
        """Each segment of ``plan`` in order, with the iterator of its chunks.

        The caller exhausts each segment's chunks before asking for the next. With
        batching and ``lookahead`` the first segment is streamed alone (time to first
        audio as without batching) and the rest are generated ahead in a batch that
        ramps up; without ``lookahead`` the batch has its full width at once.
        """
        jobs = self.jobs(plan, seed=seed)
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
        try:
            for job, result in generated:
                if result is _FALLBACK:
                    yield job.segment, self._with_retry(job)
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
        as synthesis cuts them (a last call with the rest; none when nothing is left)."""
        cutter = self._cutter(segment)
        calls: list[PlannedChunk] = []

        def call() -> None:
            tokens, _index, _window, reread = cutter.take()
            if tokens:
                calls.append(PlannedChunk(len(tokens), reread))

        for _ in range(speech_tokens):
            if cutter.add(0):
                call()
        call()
        return calls

    def _prompt(self, history: Sequence[Sequence[int]]) -> tuple[int, ...] | None:
        tokens = self.segment_context.prompt_tokens(history)
        return tuple(tokens) if tokens else None

    def _cutter(self, segment: Segment) -> ChunkCutter:
        n, idx = segment.tokens, segment.index
        return ChunkCutter(lambda c: self.chunk_policy.chunk_size(n, c, idx),
                           lambda c: self.context_policy.context_window(n, c, idx))

    @staticmethod
    def _recorded(chunks: Iterator[ChunkOutput], history: list[tuple[int, ...]]) -> Iterator[ChunkOutput]:
        """``chunks``, adding the segment's tokens to ``history`` as its last chunk passes."""
        for chunk in chunks:
            if chunk.result is not None:
                history.append(chunk.result.tokens)
            yield chunk

    # -- one segment, streamed as it is generated ------------------------------------------

    def _streamed(self, job: SegmentJob) -> Iterator[ChunkOutput]:
        """``job``'s chunks, each decoded as soon as its tokens are sampled: a batch of
        one row; each chunk's steps and decode are one piece of model work."""
        engine, attention = self.engine, self.attention
        batch = engine.open_batch(attention)
        try:
            decoder = engine.decoder(job, crossfade_ms=self.crossfade_ms)
            cutter = self._cutter(job.segment)
            result: GeneratedSegment | None = None
            joining: list[SegmentJob] = [job]
            while True:
                with engine.work(attention):
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
                    last = not full
                    tokens, index, context, reread = cutter.take()
                    decoded = decoder.decode(tokens, context, last=last)
                yield ChunkOutput(decoded.audio, index, len(tokens), t3_seconds, decoded.decode_seconds,
                                  decoded.vocoder_seconds, 0.0, last, result if last else None,
                                  context_tokens=reread)
                if last:
                    return
        finally:
            batch.close()  # releases the KV cache when the caller stops early

    def _with_retry(self, job: SegmentJob) -> Iterator[ChunkOutput]:
        """``job``'s chunks; retried once, then split, while nothing was handed out."""
        last_error: Exception | None = None
        for attempt in (1, 2):
            emitted = False
            try:
                for chunk in self._streamed(job):
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
        splitter = SegmentPlanner(self.planner.splitter, self.planner.estimator, settings)
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
                            segment.start + part.end, part.tokens, segment.boundary)
            try:
                chunks = list(self._streamed(replace(job, key=next(self._keys), segment=piece)))
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

    def _decoded(self, job: SegmentJob, finished: _Finished) -> Iterator[ChunkOutput]:
        """The audio of tokens generated earlier, chunk by chunk exactly as a streamed
        segment is cut and decoded (so it is the same audio); each chunk is one
        piece of model work, made when the caller asks for it."""
        result = finished.result
        tokens = list(result.tokens)
        rate = result.t3_seconds / len(tokens) if tokens else 0.0
        decoder = self.engine.decoder(job, crossfade_ms=self.crossfade_ms)
        cutter = self._cutter(job.segment)

        def chunk(last: bool) -> ChunkOutput:
            with self.engine.work():
                waited = time.perf_counter() - finished.at
                pending, index, context, reread = cutter.take()
                decoded = decoder.decode(pending, context, last=last)
            return ChunkOutput(decoded.audio, index, len(pending), rate * len(pending),
                               decoded.decode_seconds, decoded.vocoder_seconds, waited, last,
                               result if last else None, result.t3_seconds if last else 0.0,
                               context_tokens=reread)

        for token in tokens:
            if cutter.add(token):
                yield chunk(last=False)
        yield chunk(last=True)

    def _generated(self, jobs: list[SegmentJob], width: int,
                   ramp: Callable[[int], int] | None) -> Iterator[tuple[SegmentJob, Any]]:
        """``(job, result)`` for every job, in job order, lazily: the jobs join the
        shared queue, and each result is waited for by running steps of the shared
        batch. A result is a :class:`_Finished` or ``_FALLBACK``."""
        with self._lock:
            if self._batch is None and not self._queue:
                self._limit, self._ramp, self._ended = width, ramp, 0
            self._queue.extend(jobs)
        done = 0
        try:
            for job in jobs:
                result = self._wait(job)
                done += 1
                yield job, result
        finally:
            self._cancel(jobs[done:])

    def _wait(self, job: SegmentJob) -> Any:
        """Run the shared batch until ``job`` has a result; take it."""
        with self._lock:
            while job.key not in self._results:
                if job.key not in self._in_flight and all(j.key != job.key for j in self._queue):
                    raise SynthesisError(f"segment {job.segment.index} is neither queued nor "
                                         "generating (a scheduler bug; please report it)")
                self._advance()
            result = self._results.pop(job.key)
        if isinstance(result, BaseException):
            raise result
        return result

    def _width(self) -> int:
        width = self._limit
        if self._ramp is not None:
            width = min(width, self._ramp(self._ended))
        return max(1, width)

    def _advance(self) -> None:
        """Steps of the shared batch, in one piece of model work, until a row ends."""
        engine = self.engine
        with engine.work(self.attention):
            if self._batch is None:
                self._batch = engine.open_batch(self.attention)
            while True:
                joining: list[SegmentJob] = []
                free = self._width() - self._batch.rows
                while self._queue and free > 0:
                    joining.append(self._queue.popleft())
                    free -= 1
                if not joining and not self._batch.rows:
                    return  # nothing to run (the waited-for job was failed or cancelled)
                try:
                    steps = self._batch.step(joining)
                except Exception as exc:  # noqa: BLE001 - out of memory, or any failure
                    self._failed(exc, joining)
                    return
                for job in joining:
                    self._in_flight[job.key] = job
                ended = False
                now = time.perf_counter()
                for step in steps:
                    if step.finished is None:
                        continue
                    key = step.job.key
                    self._in_flight.pop(key, None)
                    self._ended += 1
                    ended = True
                    if key in self._abandoned:
                        self._abandoned.discard(key)
                    else:
                        self._results[key] = _Finished(step.finished, now)
                if not self._batch.rows and not self._queue:
                    self._close_batch()
                if ended:
                    return

    def _failed(self, exc: Exception, joining: list[SegmentJob]) -> None:
        """A step raised: the rows without a result start again narrower (out of
        memory), or go one at a time through the retry path (anything else)."""
        pending = sorted([*self._in_flight.values(), *joining], key=lambda j: j.key)
        in_use = self._width()
        self._in_flight.clear()
        self._close_batch()
        live = [j for j in pending if j.key not in self._abandoned]
        self._abandoned.difference_update(j.key for j in pending)
        if self.engine.is_out_of_memory(exc):
            if in_use <= 1:
                if live:
                    self._results[live[0].key] = BatchOutOfMemory(live[0], exc)
                self._queue.extendleft(reversed(live[1:]))
                return
            self._limit, self._ended = in_use // 2, 0
            self._queue.extendleft(reversed(live))
            return
        waiting = live + list(self._queue)
        self._queue.clear()
        warnings.warn(f"batched generation of segments {[j.segment.index for j in waiting]} failed "
                      f"({type(exc).__name__}: {exc}); generating them one at a time",
                      RuntimeWarning, stacklevel=4)
        for job in waiting:
            self._results[job.key] = _FALLBACK

    def _cancel(self, jobs: Sequence[SegmentJob]) -> None:
        """A stream stopped early: drop its jobs from the queue and its results; rows it
        has in flight are dropped with the batch if no other stream's rows share it."""
        if not jobs:
            return
        keys = {j.key for j in jobs}
        with self._lock:
            self._queue = deque(j for j in self._queue if j.key not in keys)
            for key in keys:
                self._results.pop(key, None)
            ours = [key for key in self._in_flight if key in keys]
            if len(ours) == len(self._in_flight) and not self._queue:
                self._in_flight.clear()
                self._close_batch()  # frees the KV cache now
            else:  # other streams' rows share the batch: ours run to their end, unread
                self._abandoned.update(ours)

    def _close_batch(self) -> None:
        if self._batch is not None:
            batch, self._batch = self._batch, None
            batch.close()


def _snippet(text: str, width: int = 50) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


__all__ = ["BatchOutOfMemory", "ChunkCutter", "ChunkOutput", "MIN_RETRY_TARGET", "PlannedChunk",
           "SegmentScheduler", "ramp_sizes"]
