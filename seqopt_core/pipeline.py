"""The front end: plan a text, then stream its segments' audio as one stream.

    from seqopt_core import Pipeline

    pipeline = Pipeline.from_config(profile="rtx4090")          # released weights (downloads)
    for chunk in pipeline.stream(open("chapter.txt").read()):
        play(chunk.audio, chunk.sample_rate)                      # float32 mono, 24 kHz
    result = pipeline.synthesize("Hello there.")                 # whole waveform + metrics

:class:`Pipeline` plans the text (:class:`~seqopt_core.planner.SegmentPlanner`),
hands the plan to its :class:`~seqopt_core.scheduler.SegmentScheduler` (which
decides what the engine runs and when), adds the pauses between segments, and
tells observers (lifecycle hooks) about every chunk, segment and run, also when
the caller closes the stream early. It talks to the engine only through
:class:`seqopt_core.engine.Engine`; the engine is the config's ``[engine]``
slot, loaded through the plugins like every other strategy.

Every segment of the plan is synthesized in order; nothing is skipped. A segment
that fails before any of its audio was handed out is retried once, then planned
again at half the length and synthesized piece by piece; if that fails too, the
error names the segment.

One pipeline may run several streams at once, from one thread or several: each
stream's audio is what it is alone (with a seed, sample for sample), and its
metrics are its own (:attr:`AudioStream.metrics`, :attr:`Synthesis.metrics`).
Their segments generated ahead share the scheduler's batch; the engine runs one
piece of work at a time, so streams share its speed rather than add to it.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .api import ConfigLike, as_loaded_config, build_planner, plugin_host
from .config import ResolvedSlot, SynthesisConfig, resolve_config
from .costs import (
    CALIBRATION_CHUNKS,
    CALIBRATION_TEXT,
    CostModel,
    CostModelError,
    cost_cache_path,
    cost_model_from_chunks,
    load_cost_model,
    save_cost_model,
)
from .engine import AttentionSettings, Engine, EngineRuntime, SegmentJob
from .errors import ConfigError, PluginError, SeqoptError
from .languages import run_language
from .planner import SegmentPlanner
from .plugins import PluginHost
from .scheduler import ChunkOutput, SegmentScheduler, StreamStopped
from .strategies import AttentionBackendSpec
from .types import (
    ChunkEvent,
    GenerationEvent,
    Segment,
    SegmentEvent,
    SegmentPlan,
    SequenceOptimizationMetrics,
    attention_matrix_mb,
)


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
    (exhausted, closed, stopped or failed), whatever other streams run meanwhile.
    :meth:`stop` may be called from any thread (a server whose client went away).
    """

    def __init__(self, chunks: Generator[AudioChunk, None, None], run: _Run) -> None:
        self._chunks = chunks
        self._run = run

    def __iter__(self) -> AudioStream:
        return self

    def __next__(self) -> AudioChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop generating and free the run's state; :attr:`metrics` then says how far it got.
        From the thread that iterates the stream (or when no thread does)."""
        self._chunks.close()

    def stop(self) -> None:
        """Stop this stream from any thread, without waiting: its rows leave the shared
        batch at the next token step, its queued segments are dropped, and the thread
        iterating it gets no further chunk (the iteration ends; a model call already
        running finishes first). :attr:`metrics` is set once that thread has ended it."""
        self._run.stop.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._run.stop.is_set()

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
    #: Set by :meth:`AudioStream.stop` (any thread); the scheduler watches it.
    stop: threading.Event = field(default_factory=threading.Event)


def attention_settings(spec: AttentionBackendSpec, backend: Any) -> AttentionSettings:
    """What the engine is told about the attention slot: the record's declared
    capabilities and the backend object's options (never its name)."""
    heads: tuple[tuple[int, int], ...] = ()
    if spec.provides_alignment:
        given = getattr(backend, "aligned_heads", None)
        if not given:
            raise PluginError(
                f"attention backend {spec.name!r} declares provides_alignment=True but its object "
                f"({type(backend).__name__}) has no aligned_heads: give it the (layer, head) pairs "
                "the alignment guard reads, or declare provides_alignment=False")
        heads = tuple((int(layer), int(head)) for layer, head in given)
    return AttentionSettings(spec.name, str(backend.attn_implementation), spec.provides_alignment,
                             heads, int(getattr(backend, "repetition_run", 2)), spec.keeps_all_layers,
                             spec.setup)


class Pipeline:
    """Planner, scheduler and engine from one config."""

    def __init__(self, planner: SegmentPlanner, engine: Engine, *, chunk_policy: Any,
                 context_policy: Any, segment_context: Any, attention: AttentionSettings | None,
                 host: PluginHost, settings: SynthesisConfig | None = None,
                 independent_segments: bool = True, batching: bool = True,
                 uses_playback: bool = False, batched_decode: bool = False,
                 concurrent_stages: bool = False, voices: bool = False,
                 languages: tuple[str, ...] = (), estimator_options: Any = None) -> None:
        self.planner = planner
        self.engine = engine
        self.host = host
        self.settings = settings if settings is not None else SynthesisConfig()
        self.sample_rate = int(engine.sample_rate)
        check = getattr(engine, "check_attention", None)
        if attention is not None and check is not None:
            check(attention)  # refuse what this checkpoint lacks before any synthesis or retry
        self.scheduler = SegmentScheduler(
            engine, attention=attention, chunk_policy=chunk_policy, context_policy=context_policy,
            segment_context=segment_context, independent_segments=independent_segments,
            batching=batching, planner=planner, crossfade_ms=self.settings.crossfade_ms,
            batch_size=self.settings.batch_size, uses_playback=uses_playback,
            batched_decode=batched_decode, decode_batch_size=self.settings.decode_batch_size,
            overlap=self._overlap(engine, concurrent_stages),
            costs=lambda: self.costs, pause_seconds=self._pause_seconds)
        self._costs: CostModel | None = None
        self._costs_lock = threading.Lock()
        #: Whether the engine's record declares ``voices`` (``stream(voice=...)``).
        self.voices = voices
        self._voice_engines: dict[tuple[str, int, int], Engine] = {}
        self._voices_lock = threading.Lock()
        #: What the engine's record says it speaks (its default first; ``stream(language=...)``).
        self.languages = tuple(languages)
        self._estimator_options = estimator_options
        self._planners: dict[str, SegmentPlanner] = {}
        self._planners_lock = threading.Lock()
        self.scheduler.planner_for = self.planner_for  # a failed segment re-planned in its language
        #: Told what is happening while the device's costs are measured (a message), if set.
        self.on_status: Callable[[str], None] | None = None
        #: Metrics of the run that ended last (set in one step when a stream is
        #: exhausted or closed). With several streams at once, read each
        #: stream's own :attr:`AudioStream.metrics` instead.
        self.last_metrics: RunMetrics | None = None

    # The strategies live in the scheduler, which uses them; these are read-only views.

    @property
    def chunk_policy(self) -> Any:
        return self.scheduler.chunk_policy

    @property
    def context_policy(self) -> Any:
        return self.scheduler.context_policy

    @property
    def segment_context(self) -> Any:
        return self.scheduler.segment_context

    @property
    def attention(self) -> AttentionSettings | None:
        return self.scheduler.attention

    @classmethod
    def from_config(cls, config: ConfigLike = None, *, profile: str | None = None,
                    overrides: dict[str, Any] | None = None, host: PluginHost | None = None,
                    engine: Engine | None = None) -> Pipeline:
        """Build everything ``config`` names (see :func:`seqopt_core.build_planner`),
        loading the ``[engine]`` slot's engine.

        ``engine`` reuses an engine already loaded (the same engine name) instead of
        loading again; the config's own engine options and ``[synthesis]`` settings
        apply, never the engine's (:meth:`Engine.configured`).
        """
        loaded = as_loaded_config(config, profile=profile, overrides=overrides, validate=False)
        host = host or plugin_host(loaded)
        resolved = resolve_config(loaded, host)  # every slot, against these plugins
        synthesis = loaded.config.synthesis
        chosen = resolved["engine"]
        engine_spec = host.strategy("engine", chosen.name).spec
        if engine is None:
            engine = host.create_engine(chosen.name, chosen.options,
                                        EngineRuntime(synthesis.device, synthesis.dtype))
        else:
            name = engine.describe().get("name")
            if name != chosen.name:
                raise ConfigError(f"{loaded.origin('engine.name')}: engine.name is {chosen.name!r} but "
                                  f"the engine given is {name!r}; load it from this config instead")
            engine = engine.configured(chosen.options)
        loaded = _with_engine_tokenizer(loaded, host, resolved, engine)
        planner = build_planner(loaded, host=host)

        def make(slot: str) -> Any:
            r = resolved[slot]
            return host.create(slot, r.name, r.options)

        attention = None
        if engine_spec.uses_attention:
            attention = attention_settings(host.strategy("attention", resolved["attention"].name).spec,
                                           make("attention"))
        context_spec = host.strategy("segment_context", resolved["segment_context"].name).spec
        chunk_spec = host.strategy("chunk_policy", resolved["chunk_policy"].name).spec
        return cls(planner, engine, chunk_policy=make("chunk_policy"),
                   context_policy=make("context_policy"), segment_context=make("segment_context"),
                   attention=attention, host=host, settings=synthesis,
                   independent_segments=context_spec.independent_segments,
                   batching=engine_spec.batching, uses_playback=chunk_spec.uses_playback,
                   batched_decode=engine_spec.batched_decode,
                   concurrent_stages=engine_spec.concurrent_stages, voices=engine_spec.voices,
                   languages=engine_spec.languages, estimator_options=_estimator_options(loaded, host))

    def planner_for(self, language: str | None) -> SegmentPlanner:
        """The planner for texts in ``language`` (``None``: the config's, :attr:`planner`):
        the same splitter and limits, the estimator counting for that language, and every
        segment stamped with it, so the engine tokenizes it so. A language the engine does
        not speak raises :class:`ConfigError` listing the ones it does."""
        if language is None or language.strip().lower() == self.planner.language:
            return self.planner
        name = str(self.engine.describe().get("name"))
        code = run_language(language, name, self.languages, key="language")
        with self._planners_lock:
            planner = self._planners.get(code)
            if planner is None:
                base = self.planner
                estimator = base.estimator
                if getattr(self.host.strategy("estimator", base.estimator_name).spec, "per_language", False):
                    estimator = self.host.create("estimator", base.estimator_name, self._estimator_options,
                                                 language=code)
                planner = SegmentPlanner(base.splitter, estimator, base.settings, splitter_name=base.splitter_name,
                                         estimator_name=base.estimator_name, on_plan=base.on_plan, language=code)
                self._planners[code] = planner
        return planner

    def _overlap(self, engine: Engine, concurrent_stages: bool) -> bool:
        """``synthesis.overlap``: only for an engine whose record declares
        ``concurrent_stages``; ``auto`` asks the engine's ``prefers_overlap()`` (off
        where it has none)."""
        wanted = self.settings.overlap
        if not concurrent_stages:
            if wanted is True:
                raise ConfigError(f"synthesis.overlap = true, but engine {engine.describe().get('name')!r} "
                                  "does not declare concurrent_stages; use overlap = \"auto\" or false")
            return False
        if wanted == "auto":
            prefers = getattr(engine, "prefers_overlap", None)
            return bool(prefers()) if prefers is not None else False
        return bool(wanted)

    # -- what the work costs ----------------------------------------------------------

    def _pause_seconds(self, segment: Segment) -> float:
        return self.settings.pause_ms.get(segment.boundary, 0.0) / 1000.0

    @property
    def costs(self) -> CostModel:
        """The device's :class:`~seqopt_core.costs.CostModel` that a playback-aware chunk
        policy plans with, fixed for the pipeline's life (so a seed gives the same
        chunks every run): ``synthesis.costs``'s file, or with ``auto`` the one
        measured for this pipeline's :meth:`cost_key` and cached
        (:func:`~seqopt_core.costs.cost_cache_dir`), measured now if there is none
        (:meth:`measure_costs`; seconds on a GPU, about a minute on a CPU)."""
        with self._costs_lock:
            if self._costs is None:
                self._costs = self._resolve_costs()
            return self._costs

    def _resolve_costs(self) -> CostModel:
        given = self.settings.costs
        if given != "auto":
            try:
                return load_cost_model(given)
            except CostModelError as exc:
                raise ConfigError(f"synthesis.costs: {exc}") from None
        key = self.cost_key()
        path = cost_cache_path(key)
        if path.is_file():
            try:
                return load_cost_model(path)
            except CostModelError as exc:
                warnings.warn(f"ignoring the cached cost model ({exc}); measuring again", RuntimeWarning,
                              stacklevel=3)
        if self.on_status is not None:
            self.on_status("measuring what this device's work costs (once per device; cached in "
                           f"{path.parent})")
        busy = _busy_machine()
        model = self.measure_costs()
        busy = busy or _busy_machine()
        if busy:
            warnings.warn(f"the machine was busy while this device's costs were measured ({busy}); "
                          f"the deadline chunk policy may plan for a slower device than this. Measure "
                          f"again when it is quiet: `seqopt costs --save` (or delete {path})",
                          RuntimeWarning, stacklevel=3)
        try:
            save_cost_model(model, path, key)
        except OSError as exc:
            warnings.warn(f"could not cache the cost model in {path}: {exc}", RuntimeWarning, stacklevel=3)
        return model

    def cost_key(self) -> dict[str, Any]:
        """What this pipeline's costs depend on: the engine's own ``cost_key()`` (or its
        description without file paths) and the attention implementation."""
        key_of = getattr(self.engine, "cost_key", None)
        if key_of is not None:
            key = dict(key_of())
        else:
            key = {k: v for k, v in self.engine.describe().items() if k not in ("checkpoint", "tokenizer")}
        attention = self.attention
        key["attention"] = None if attention is None else attention.attn_implementation
        return key

    def measure_costs(self, sizes: Sequence[int] = CALIBRATION_CHUNKS) -> CostModel:
        """Measure the device's costs now: :data:`~seqopt_core.costs.CALIBRATION_TEXT`
        streamed in chunks of ``sizes`` with no context, stopped after them."""
        text = CALIBRATION_TEXT
        segment = Segment(0, text, 0, len(text), self.planner.estimator.count(text), "end",
                          self.planner.language)
        job = SegmentJob(-1, segment, self.settings.seed if self.settings.seed is not None else 0)
        chunks = self.scheduler.measure_chunks(job, sizes)
        measured = [(c.speech_tokens, c.context_tokens, c.t3_seconds, c.decode_seconds) for c in chunks]
        return cost_model_from_chunks(measured, source="measured " + time.strftime("%Y-%m-%d %H:%M:%S"))

    # -- voices -----------------------------------------------------------------------

    def voice_engine(self, voice: str | os.PathLike[str]) -> Engine:
        """The engine speaking in the voice of the reference audio file ``voice``, on this
        pipeline's loaded model. Prepared once per file (its conditionals computed) and
        kept while the file is unchanged (same size and modification time), so a server
        pays for a voice once. Raises the engine's error for an unusable file, and a
        :class:`~seqopt_core.errors.ConfigError` when the engine has no voices."""
        if not self.voices:
            raise ConfigError(f"engine {self.engine.describe().get('name')!r} does not declare voices: it "
                              "speaks only in its own voice; leave the voice out")
        path = os.path.abspath(os.fspath(voice))
        try:
            info = os.stat(path)
        except OSError as exc:
            raise SeqoptError(f"cannot use voice file {os.fspath(voice)!r}: {exc.strerror}") from None
        key = (path, info.st_size, info.st_mtime_ns)
        with self._voices_lock:  # one preparation per file, also with several streams at once
            engine = self._voice_engines.get(key)
            if engine is None:
                engine = self.engine.with_voice(path)  # type: ignore[attr-defined]
                for old in [k for k in self._voice_engines if k[0] == path]:
                    del self._voice_engines[old]  # the file changed: the old voice goes
                self._voice_engines[key] = engine
            return engine

    # -- streaming ------------------------------------------------------------------

    def stream(self, text: str, plan: SegmentPlan | None = None, *, seed: int | None | object = ...,
               voice: str | os.PathLike[str] | None = None, language: str | None = None) -> AudioStream:
        """Audio chunks of ``text`` in order, as soon as each is ready.

        ``plan`` reuses a plan the caller already made of this same text (its
        planning time is then not in the run's wall time). Planning errors (empty
        text, ...) are raised before anything is yielded. Closing the stream
        early stops generation and frees its state; the stream's
        :attr:`~AudioStream.metrics` (and :attr:`last_metrics`) then hold the
        run's metrics.

        Several streams may run at once on one pipeline, in one thread or in
        several; each gets the audio it gets alone. Nothing is held while the
        caller holds a chunk, so a stream left unfinished blocks no other.

        With batched synthesis (``synthesis.batch_size`` above 1) and
        ``synthesis.lookahead`` (default), the first segment is generated alone and
        streamed chunk by chunk (time to first audio as without batching), and
        the following segments are generated by continuous batching: up to the
        batch size of them share each token step, a finished one is replaced by
        the next, and each segment's audio is decoded, in order, when the stream
        reaches it. The batch starts at 2 segments and widens (4, 8, ...) as
        segments finish, so the second segment is ready soon. Without look-ahead
        the batch has the full size from the start.

        ``seed`` replaces ``synthesis.seed`` for this stream (``None``: unseeded);
        ``voice`` is a reference audio file to speak in (:meth:`voice_engine`; an
        engine that declares ``voices``), prepared before anything is yielded;
        ``language`` replaces ``synthesis.language`` for this stream's text
        (:meth:`planner_for`: a language the engine does not speak is refused now).
        Streams in different languages share the engine's batches.
        """
        planner = self.planner_for(language)
        return self._stream(text, plan, lookahead=self.settings.lookahead, seed=seed, voice=voice, planner=planner)

    def _stream(self, text: str, plan: SegmentPlan | None, *, lookahead: bool, seed: int | None | object = ...,
                voice: str | os.PathLike[str] | None = None, planner: SegmentPlanner | None = None) -> AudioStream:
        if seed is ...:
            seed = self.settings.seed
        elif seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"seed must be a whole number of at least 0 (or None), got {seed!r}")
        engine = self.voice_engine(voice) if voice is not None else None
        run = _Run()
        return AudioStream(self._run(text, plan, run, lookahead=lookahead, seed=seed, engine=engine,
                                     planner=planner), run)

    def _run(self, text: str, plan: SegmentPlan | None, run: _Run, *, lookahead: bool,
             seed: Any = None, engine: Engine | None = None,
             planner: SegmentPlanner | None = None) -> Generator[AudioChunk, None, None]:
        started = time.perf_counter()
        self.engine.reset_peak_memory()
        if plan is None:
            plan = (planner or self.planner).plan(text)
        metrics = RunMetrics(GenerationEvent(plan, 0, 0, 0.0, 0.0, None))
        audio_seconds, first_audio, chunk_count = 0.0, None, 0
        completed = False
        rate = self.sample_rate
        sources = self.scheduler.segments(plan, seed=seed, lookahead=lookahead, engine=engine, stop=run.stop)
        try:
            for segment, pieces in sources:
                seg_started = time.perf_counter()
                seg_chunks, seg_tokens, seg_audio = 0, 0, 0.0
                last: ChunkOutput | None = None
                for chunk in pieces:
                    now = time.perf_counter()
                    if first_audio is None and len(chunk.audio):
                        first_audio = now - started
                    pause = 0
                    if chunk.is_last and segment.index < len(plan.segments) - 1:
                        pause = int(rate * self.settings.pause_ms.get(segment.boundary, 0.0) / 1000)
                    audio = np.concatenate([chunk.audio, np.zeros(pause, np.float32)]) if pause else chunk.audio
                    seconds = len(audio) / rate
                    event = ChunkEvent(segment.index, chunk_count, chunk.speech_tokens, seconds,
                                       chunk.t3_seconds + chunk.decode_seconds, now - started,
                                       is_first_audio=(first_audio is not None and chunk_count == 0),
                                       t3_seconds=chunk.t3_seconds, decode_seconds=chunk.decode_seconds,
                                       s3gen_seconds=chunk.vocoder_seconds,
                                       queue_seconds=chunk.queue_seconds,
                                       context_tokens=chunk.context_tokens)
                    chunk_count += 1
                    seg_chunks += 1
                    seg_tokens += chunk.speech_tokens
                    seg_audio += seconds
                    audio_seconds += seconds
                    metrics.chunks.append(event)
                    self.host.chunk_emitted(event)
                    last = chunk
                    yield AudioChunk(audio, rate, segment, event, chunk.is_last, pause)
                assert last is not None and last.result is not None
                result = last.result
                metrics.segment_speech_tokens.append(list(result.tokens))
                # a batched segment's T3 time was spent before its audio: count its share
                wall = time.perf_counter() - seg_started + last.ahead_seconds
                seg_event = SegmentEvent(segment, seg_chunks, seg_tokens, seg_audio, wall,
                                         result.stopped_by)
                metrics.segments.append(seg_event)
                self.host.segment_finished(seg_event)
            completed = True
        except StreamStopped:
            return  # stopped from another thread: the stream ends here, not completed
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
                self.engine.peak_memory_bytes(), completed, extra)
            run.metrics = metrics  # complete: both are set only now, in one step each
            self.last_metrics = metrics
            self.host.generation_finished(metrics.generation)

    def batching(self, plan: SegmentPlan) -> int:
        """Segments per batch for ``plan`` (see :meth:`SegmentScheduler.batch_width`)."""
        return self.scheduler.batch_width(plan.segments)

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
        stream = self._stream(text, None, lookahead=False)
        parts = [c.audio for c in stream]
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        assert stream.metrics is not None
        return Synthesis(audio, self.sample_rate, stream.metrics)


def _busy_machine() -> str | None:
    """``"load average X on N CPUs"`` when other work loads the CPUs, else ``None``."""
    from .system import cpu_counts, load_average

    load, cpus = load_average(), cpu_counts().get("usable") or 1
    if load and load[0] > cpus:
        return f"load average {load[0]:.1f} on {cpus} CPUs"
    return None


def _estimator_options(loaded: Any, host: PluginHost) -> Any:
    """The config's estimator options, validated (what :meth:`Pipeline.planner_for` builds with)."""
    choice = loaded.config.estimator
    return host.strategy("estimator", choice.name).spec.validated(choice.options)


def _with_engine_tokenizer(loaded: Any, host: PluginHost, resolved: dict[str, ResolvedSlot],
                           engine: Engine) -> Any:
    """An estimator with a ``tokenizer`` option and none given counts with the tokenizer
    file the loaded engine itself uses (``describe()["tokenizer"]``), if it says."""
    estimator = resolved["estimator"]
    spec = host.strategy("estimator", estimator.name).spec
    tokenizer = engine.describe().get("tokenizer")
    if (not tokenizer or "tokenizer" not in spec.options.model_fields
            or loaded.config.estimator.options.get("tokenizer")):
        return loaded
    return as_loaded_config(loaded, overrides={"estimator": {"options": {"tokenizer": str(tokenizer)}}},
                            host=host)


__all__ = ["AudioChunk", "AudioStream", "Pipeline", "RunMetrics", "Synthesis", "attention_settings"]
