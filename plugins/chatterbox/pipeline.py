"""The whole pipeline: plan a text, then synthesize its segments as one audio stream.

    from seqopt_core import Pipeline

    pipeline = Pipeline.from_config(profile="rtx4090")          # released weights (downloads)
    for chunk in pipeline.stream(open("chapter.txt").read()):
        play(chunk.audio, chunk.sample_rate)                      # float32 mono, 24 kHz
    result = pipeline.synthesize("Hello there.")                 # whole waveform + metrics

Every segment of the plan is synthesized in order; nothing is skipped. A segment
that fails before any of its audio was handed out is retried once, then planned
again at half the length and synthesized piece by piece; if that fails too, the
error names the segment. Observers (lifecycle hooks) hear about every chunk,
segment and run, also when the caller closes the stream early.

One pipeline may run several streams at once, from one thread or several: each
stream's audio is what it is alone (with a seed, sample for sample), its metrics
are its own (:attr:`AudioStream.metrics`, :attr:`Synthesis.metrics`), and T3's
attention implementation is set per piece of model work and always put back.
The model itself runs one piece of work at a time (one chunk, see
:mod:`.engine`), so streams share its speed rather than add to it.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from seqopt_core import ConfigError, PluginHost, SegmentPlanner, build_planner, plugin_host, resolve_config
from seqopt_core.api import ConfigLike, as_loaded_config
from seqopt_core.planner import PlannerSettings
from seqopt_core.types import (
    ChunkEvent,
    GenerationEvent,
    Segment,
    SegmentEvent,
    SegmentPlan,
    SequenceOptimizationMetrics,
    attention_matrix_mb,
)

from .attention_kernels import check_heads
from .engine import ChatterboxEngine, EngineChunk, SegmentResult, SynthesisError
from .t3_batch import BatchOutOfMemory, Width, is_out_of_memory, ordered_results, ramp_sizes
from .vocoder import SAMPLE_RATE, TOKENS_PER_SECOND

#: Smallest target the retry may re-plan a failed segment to.
MIN_RETRY_TARGET = 8


@dataclass
class AudioChunk:
    """A piece of the output stream: audio plus where it came from and what it cost."""

    audio: np.ndarray  # float32 mono
    sample_rate: int
    segment: Segment
    event: ChunkEvent
    is_segment_end: bool
    pause_samples: int = 0  # trailing silence included at the end of ``audio``


@dataclass
class RunMetrics:
    """Metrics of one text, as delivered to ``seqopt_generation_finished``."""

    generation: GenerationEvent
    segments: list[SegmentEvent] = field(default_factory=list)
    chunks: list[ChunkEvent] = field(default_factory=list)
    sequence: SequenceOptimizationMetrics | None = None
    #: The speech token ids T3 sampled for each finished segment, in segment order.
    segment_speech_tokens: list[list[int]] = field(default_factory=list)

    @property
    def speech_tokens(self) -> int:
        return sum(s.speech_tokens for s in self.segments)

    @property
    def speech_tokens_per_second(self) -> float:
        wall = self.generation.wall_seconds
        return self.speech_tokens / wall if wall else 0.0

    def to_dict(self) -> dict[str, Any]:
        g = self.generation
        return {
            "time_to_first_audio": g.time_to_first_audio,
            "rtf": g.rtf,
            "wall_seconds": g.wall_seconds,
            "audio_seconds": g.audio_seconds,
            "segments": g.segments,
            "chunks": g.chunks,
            "speech_tokens": self.speech_tokens,
            "speech_tokens_per_second": self.speech_tokens_per_second,
            "peak_memory_bytes": g.peak_memory_bytes,
            "completed": g.completed,
            "planning_seconds": g.plan.planning_seconds,
            "sequence": None if self.sequence is None else {
                k: getattr(self.sequence, k) for k in self.sequence.__slots__},
            "per_segment": [
                {"index": s.segment.index, "text_tokens": s.segment.tokens, "boundary": s.segment.boundary,
                 "chunks": s.chunks, "speech_tokens": s.speech_tokens, "audio_seconds": s.audio_seconds,
                 "wall_seconds": s.wall_seconds, "rtf": s.rtf, "stopped_by": s.stopped_by}
                for s in self.segments],
        }


@dataclass
class Synthesis:
    """A whole text's audio and metrics."""

    audio: np.ndarray
    sample_rate: int
    metrics: RunMetrics


class AudioStream(Iterator["AudioChunk"]):
    """The audio chunks of one text, in order (what :meth:`Pipeline.stream` returns).

    An iterator like a generator: ``next``, ``for``, :meth:`close` (also as a
    context manager). :attr:`metrics` is this run's own, set once it ended
    (exhausted, closed, or failed), whatever other streams run meanwhile.
    """

    def __init__(self, chunks: Generator[AudioChunk, None, None], run: _Run) -> None:
        self._chunks = chunks
        self._run = run

    def __iter__(self) -> AudioStream:
        return self

    def __next__(self) -> AudioChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop generating and free the run's state; :attr:`metrics` then says how far it got."""
        self._chunks.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def metrics(self) -> RunMetrics | None:
        """This run's metrics once it ended; ``None`` while it runs."""
        return self._run.metrics


@dataclass
class _Run:
    """Where one run's finished metrics are put (each stream has its own)."""

    metrics: RunMetrics | None = None


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _check_aligned_heads(attention: Any, engine: ChatterboxEngine) -> None:
    """The config load checked the heads against the released T3 (30 layers of 16); a smaller
    checkpoint is only known now: refuse heads it lacks before any synthesis or retry."""
    heads = getattr(attention, "aligned_heads", ())
    if not (getattr(attention, "provides_alignment", False) and heads):
        return
    cfg = engine.t3.tfmr.config
    try:
        check_heads(heads, cfg.num_hidden_layers, cfg.num_attention_heads)
    except ValueError as exc:
        raise ConfigError(f"attention.options.aligned_heads: {exc} (checkpoint {engine.loaded.path}); "
                          "choose (layer, head) pairs within it, counted from 0") from None


class Pipeline:
    """Planner, policies and engine from one config."""

    def __init__(self, planner: SegmentPlanner, engine: ChatterboxEngine, *, chunk_policy: Any,
                 context_policy: Any, segment_context: Any, attention: Any,
                 host: PluginHost) -> None:
        self.planner = planner
        self.engine = engine
        self.chunk_policy = chunk_policy
        self.context_policy = context_policy
        self.segment_context = segment_context
        self.attention = attention
        self.host = host
        self.sample_rate = SAMPLE_RATE
        _check_aligned_heads(attention, engine)
        #: Metrics of the run that ended last (set in one step when a stream is
        #: exhausted or closed). With several streams at once, read each
        #: stream's own :attr:`AudioStream.metrics` instead.
        self.last_metrics: RunMetrics | None = None

    @classmethod
    def from_config(cls, config: ConfigLike = None, *, profile: str | None = None,
                    overrides: dict[str, Any] | None = None, host: PluginHost | None = None,
                    engine: ChatterboxEngine | None = None) -> Pipeline:
        """Build everything ``config`` names (see :func:`seqopt_core.build_planner`).

        ``engine`` reuses its already-loaded models instead of loading the
        checkpoint again; the config's own ``[synthesis]`` settings (seed,
        crossfade, pauses, lengths, voice) still apply, never the engine's.
        """
        loaded = as_loaded_config(config, profile=profile, overrides=overrides)
        host = host or plugin_host(loaded)
        resolved = resolve_config(loaded, host)
        if engine is not None and engine.settings != loaded.config.synthesis:
            engine = ChatterboxEngine(engine.loaded, loaded.config.synthesis)

        def make(slot: str) -> Any:
            r = resolved[slot]
            return host.create(slot, r.name, r.options)

        if engine is None:
            engine = ChatterboxEngine.load(loaded.config.synthesis)
        estimator = loaded.config.estimator
        if estimator.name == "chatterbox" and not estimator.options.get("tokenizer"):
            # count with the tokenizer the loaded model really uses
            loaded = as_loaded_config(loaded, overrides={"estimator": {
                "options": {"tokenizer": str(engine.loaded.path / "tokenizer.json")}}})
        planner = build_planner(loaded, host=host)
        return cls(planner, engine, chunk_policy=make("chunk_policy"),
                   context_policy=make("context_policy"), segment_context=make("segment_context"),
                   attention=make("attention"), host=host)

    # -- streaming ------------------------------------------------------------------

    def stream(self, text: str, plan: SegmentPlan | None = None) -> AudioStream:
        """Audio chunks of ``text`` in order, as soon as each is ready.

        ``plan`` reuses a plan the caller already made of this same text (its
        planning time is then not in the run's wall time). Planning errors (empty
        text, ...) are raised before anything is yielded. Closing the stream
        early stops generation and frees its state; the stream's
        :attr:`~AudioStream.metrics` (and :attr:`last_metrics`) then hold the
        run's metrics.

        Several streams may run at once on one pipeline, in one thread or in
        several; each gets the audio it gets alone. The model runs one chunk of
        one stream at a time (see :mod:`.engine`); nothing is held while the
        caller holds a chunk, so a stream left unfinished blocks no other.

        With batched synthesis (``synthesis.batch_size`` above 1) and
        ``synthesis.lookahead`` (default), the first segment is generated alone and
        streamed chunk by chunk (time to first audio as without batching), and
        the following segments are generated by continuous batching: up to the
        batch size of them share each T3 step, a finished one is replaced by the
        next, and each segment's audio is decoded, in order, as soon as it and
        the ones before it are done. The batch starts at 2 segments and widens
        (4, 8, ...) as segments finish, so the second segment is ready soon.
        Without look-ahead the batch has the full size from the start.
        """
        return self._stream(text, plan, first_alone=self.engine.settings.lookahead)

    def _stream(self, text: str, plan: SegmentPlan | None, *, first_alone: bool) -> AudioStream:
        run = _Run()
        return AudioStream(self._run(text, plan, run, first_alone=first_alone), run)

    def _run(self, text: str, plan: SegmentPlan | None, run: _Run, *,
             first_alone: bool) -> Generator[AudioChunk, None, None]:
        started = time.perf_counter()
        device = self.engine.t3.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if plan is None:
            plan = self.planner.plan(text)
        metrics = RunMetrics(GenerationEvent(plan, 0, 0, 0.0, 0.0, None))
        history: list[list[int]] = []
        audio_seconds, first_audio, chunk_count = 0.0, None, 0
        completed = False
        sources = self._sources(plan, history, first_alone=first_alone)
        try:
            for segment, pieces, result in sources:
                seg_started = time.perf_counter()
                seg_chunks, seg_tokens, seg_audio = 0, 0, 0.0
                for chunk in pieces:
                    now = time.perf_counter()
                    if first_audio is None and len(chunk.audio):
                        first_audio = now - started
                    pause = 0
                    if chunk.is_last and segment.index < len(plan.segments) - 1:
                        pause = int(SAMPLE_RATE * self.engine.settings.pause_ms.get(segment.boundary, 0.0) / 1000)
                    audio = np.concatenate([chunk.audio, np.zeros(pause, np.float32)]) if pause else chunk.audio
                    seconds = len(audio) / SAMPLE_RATE
                    event = ChunkEvent(segment.index, chunk_count, chunk.speech_tokens, seconds,
                                       chunk.generate_seconds + chunk.decode_seconds, now - started,
                                       is_first_audio=(first_audio is not None and chunk_count == 0))
                    chunk_count += 1
                    seg_chunks += 1
                    seg_tokens += chunk.speech_tokens
                    seg_audio += seconds
                    audio_seconds += seconds
                    metrics.chunks.append(event)
                    self.host.chunk_emitted(event)
                    yield AudioChunk(audio, SAMPLE_RATE, segment, event, chunk.is_last, pause)
                history.append(result.speech_tokens)
                metrics.segment_speech_tokens.append(list(result.speech_tokens))
                # a batched segment's T3 time was spent before its audio: count its share
                wall = time.perf_counter() - seg_started + result.generate_seconds
                seg_event = SegmentEvent(segment, seg_chunks, seg_tokens, seg_audio, wall,
                                         result.stopped_by)
                metrics.segments.append(seg_event)
                self.host.segment_finished(seg_event)
            completed = True
        finally:
            sources.close()  # an early close drops any batch generated ahead
            wall = time.perf_counter() - started
            metrics.sequence = self._sequence_metrics(text, plan, metrics)
            tokens = sum(s.speech_tokens for s in metrics.segments)
            extra = {"speech_tokens": float(tokens),
                     "speech_tokens_per_second": tokens / wall if wall else 0.0,
                     **{f"sequence.{k}": float(getattr(metrics.sequence, k))
                        for k in metrics.sequence.__slots__ if getattr(metrics.sequence, k) is not None}}
            metrics.generation = GenerationEvent(
                plan, len(metrics.segments), chunk_count, audio_seconds, wall, first_audio,
                _peak_memory(device), completed, extra)
            run.metrics = metrics  # complete: both are set only now, in one step each
            self.last_metrics = metrics
            self.host.generation_finished(metrics.generation)

    # -- where each segment's chunks come from ------------------------------------------

    def _generator(self, segment: Segment) -> torch.Generator | None:
        """The segment's own sampling generator (seeded from ``synthesis.seed`` and the
        segment's index), so its tokens do not depend on which segments share its batch."""
        seed = self.engine.settings.seed
        if seed is None:
            return None
        return torch.Generator(device=self.engine.t3.device).manual_seed(segment_seed(seed, segment.index))

    def batching(self, plan: SegmentPlan) -> int:
        """Segments per T3 batch for ``plan``: 1 (one after another) when batching is
        off, the plan has one segment, or the ``segment_context`` strategy makes each
        segment depend on the previous one's tokens (``speech_tail``)."""
        if len(plan.segments) < 2 or not independent_segments(self.segment_context):
            return 1
        return self.engine.batch_size(plan.segments)

    def _sources(self, plan: SegmentPlan, history: list[list[int]], *,
                 first_alone: bool) -> Iterator[tuple[Segment, Iterator[EngineChunk], SegmentResult]]:
        """Each segment in order, with the iterator of its chunks and its result.

        The caller exhausts each segment's chunks before asking for the next one,
        so ``history`` is up to date for sequential segments.
        """
        segments = list(plan.segments)
        batch_size = self.batching(plan)
        if batch_size <= 1:
            for segment in segments:
                result = SegmentResult()
                yield segment, self._segment_audio(segment, history, self._generator(segment), result), result
            return
        if first_alone:  # streamed as it is generated: time to first audio as unbatched
            result = SegmentResult()
            first = segments.pop(0)
            yield first, self._segment_audio(first, history, self._generator(first), result), result
        results = ordered_results(segments, batch_size, self._generate_stream,
                                  ramp=ramp_sizes(batch_size) if first_alone else None,
                                  is_oom=self.is_out_of_memory)
        try:
            for segment, batched in results:
                if batched is None:  # generation failed: one at a time, with retry and split
                    result = SegmentResult()
                    yield segment, self._segment_audio(segment, history, self._generator(segment),
                                                       result), result
                    continue
                n, idx = segment.tokens, segment.index
                chunks = self.engine.decoded_chunks(
                    segment, batched,
                    chunk_size=lambda c, n=n, idx=idx: self.chunk_policy.chunk_size(n, c, idx),
                    context_window=lambda c, n=n, idx=idx: self.context_policy.context_window(n, c, idx))
                yield segment, chunks, batched
        except BatchOutOfMemory as exc:
            segment = exc.item
            raise SynthesisError(
                f"segment {segment.index} ({_snippet(segment.text)}) ran out of memory even in a "
                f"batch of one: {type(exc.cause).__name__}: {exc.cause}; use a smaller "
                "planner.max_tokens or a device with more memory") from exc.cause
        finally:
            results.close()

    def _generate_stream(self, segments: list[Segment],
                         width: Width) -> Iterator[tuple[int, SegmentResult | None]]:
        """T3 tokens of ``segments`` by continuous batching, each as it ends.
        Out-of-memory errors propagate (generation restarts narrower); any other
        failure gives ``None`` for each segment without a result, which then goes
        one at a time through the usual retry and split."""
        pending = set(range(len(segments)))
        stream = self.engine.generate_stream(
            segments, attention=self.attention, generators=[self._generator(s) for s in segments],
            max_active=width)
        try:
            for i, result in stream:
                pending.discard(i)
                yield i, result
        except Exception as exc:  # noqa: BLE001 - any failure of the model code
            if self.is_out_of_memory(exc):
                raise
            warnings.warn(f"batched generation of segments {[segments[i].index for i in sorted(pending)]} "
                          f"failed ({type(exc).__name__}: {exc}); generating them one at a time",
                          RuntimeWarning, stacklevel=2)
            for i in sorted(pending):
                yield i, None
        finally:
            stream.close()

    #: How an out-of-memory error is recognised (tests replace it to simulate one).
    is_out_of_memory = staticmethod(is_out_of_memory)

    def _chunks_for(self, segment: Segment, history: list[list[int]],
                    generator: torch.Generator | None, result: SegmentResult) -> Iterator[EngineChunk]:
        n, idx = segment.tokens, segment.index
        return self.engine.segment_chunks(
            segment,
            chunk_size=lambda c: self.chunk_policy.chunk_size(n, c, idx),
            context_window=lambda c: self.context_policy.context_window(n, c, idx),
            attention=self.attention,
            prompt_tokens=self.segment_context.prompt_tokens(history),
            generator=generator,
            result=result,
        )

    def _segment_audio(self, segment: Segment, history: list[list[int]],
                       generator: torch.Generator | None, result: SegmentResult) -> Iterator[EngineChunk]:
        """The segment's chunks; retried once, then split, while nothing was handed out."""
        last_error: Exception | None = None
        for attempt in (1, 2):
            result.speech_tokens.clear()
            emitted = False
            try:
                for chunk in self._chunks_for(segment, history, generator, result):
                    emitted = True
                    yield chunk
                return
            except SynthesisError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the model code
                if emitted:
                    raise SynthesisError(
                        f"segment {segment.index} ({_snippet(segment.text)}) failed after part of "
                        f"its audio was streamed: {type(exc).__name__}: {exc}") from exc
                last_error = exc
                if attempt == 1:
                    continue
        assert last_error is not None
        yield from self._split_and_retry(segment, history, generator, result, last_error)

    def _split_and_retry(self, segment: Segment, history: list[list[int]],
                         generator: torch.Generator | None, result: SegmentResult,
                         error: Exception) -> Iterator[EngineChunk]:
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
        for part in parts:
            piece = Segment(segment.index, part.text, segment.start + part.start,
                            segment.start + part.end, part.tokens, segment.boundary)
            sub = SegmentResult()
            try:
                chunks = list(self._chunks_for(piece, history, generator, sub))
            except Exception as exc:  # noqa: BLE001
                raise SynthesisError(
                    f"segment {segment.index} ({_snippet(segment.text)}) failed, also when split "
                    f"in {len(parts)}: {type(exc).__name__}: {exc}") from exc
            tokens.extend(sub.speech_tokens)
            for chunk in chunks:
                chunk.is_last = chunk.is_last and part is parts[-1]
                yield chunk
        result.speech_tokens[:] = tokens

    def _sequence_metrics(self, text: str, plan: SegmentPlan, metrics: RunMetrics) -> SequenceOptimizationMetrics:
        per_segment = [s.segment.tokens + s.speech_tokens for s in metrics.segments]
        whole = sum(per_segment)
        saved = attention_matrix_mb(whole) - max((attention_matrix_mb(n) for n in per_segment), default=0.0)
        return SequenceOptimizationMetrics(
            original_length=len(text), optimized_segments=len(plan.segments),
            total_tokens_processed=plan.total_tokens, sequence_split_time=plan.planning_seconds,
            attention_memory_saved_mb=saved)

    # -- whole texts ------------------------------------------------------------------

    def synthesize(self, text: str) -> Synthesis:
        """The whole waveform of ``text`` (float32 mono) and the run's metrics.

        With batched synthesis every batch has the full size from the first
        segment on (no look-ahead: nothing plays until the end anyway). The audio
        equals :meth:`stream`'s for the same seed.
        """
        stream = self._stream(text, None, first_alone=False)
        parts = [c.audio for c in stream]
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        assert stream.metrics is not None
        return Synthesis(audio, SAMPLE_RATE, stream.metrics)


def segment_seed(seed: int, index: int) -> int:
    """Segment ``index``'s sampling seed under the run's ``seed``."""
    return (seed * 1_000_003 + index) % (2**63)


def independent_segments(segment_context: Any) -> bool:
    """Whether segments can be generated in any order (and so in batches): the
    strategy primes no segment with earlier segments' tokens. Asked of the
    strategy with a stand-in history; ``speech_tail`` answers with tokens."""
    flag = getattr(segment_context, "independent_segments", None)
    if isinstance(flag, bool):
        return flag
    return not segment_context.prompt_tokens([[0, 1, 2, 3]])


def _snippet(text: str, width: int = 50) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width - 3] + "...")


__all__ = ["AudioChunk", "AudioStream", "Pipeline", "RunMetrics", "Synthesis", "TOKENS_PER_SECOND"]
