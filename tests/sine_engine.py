"""A tiny, complete engine plugin: sine tones instead of speech, and no torch anywhere.

It is the test suite's stand-in for a third-party engine and the example for
engine authors: register this module (an entry point in the ``seqopt`` group,
or ``PluginHost.register(module)``) and ``[engine] name = "sine"`` runs the
whole pipeline (planner, scheduler, batching, retries, chunking) on it.

* Speech tokens: ``ceil(len(segment.text) * tokens_per_text_char)`` per segment
  (``length_limit``), or fewer where ``stop_probability`` samples a stop token
  (``stop_token``). Each job draws from its own ``random.Random``, seeded by
  :func:`~seqopt_core.engine.segment_seed` and the job's prompt tokens, so a
  segment's tokens never depend on what shares its batch.
* Audio: 960 samples (1/25 s) per token of a sine whose frequency depends on
  the token; the phase runs on across the chunks of a segment.
* Stages (``concurrent_stages``): ``work(stage="tokens")`` and ``work(stage="decode")``
  hold separate locks; ``stage_log`` records each token step's and decode's
  ``(stage, start, end)`` (``step_sleep_seconds`` and ``decode_sleep_seconds`` make
  them last).
* Batched decoding (``batched_decode``): :meth:`SineEngine.decode_batch` decodes
  each call in turn and records how many it got in ``decode_batches``.
* Fault injection: ``fail_after_steps`` (each batch's step after that many
  raises ``RuntimeError``), ``fail_above_rows`` (``RuntimeError`` for a step
  that would hold more rows), ``oom_above_rows`` (``MemoryError``, which
  :meth:`SineEngine.is_out_of_memory` calls out of memory).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import EngineSpec, hookimpl
from seqopt_core.engine import (
    AttentionSettings, DecodeCall, DecodedAudio, EngineRuntime, GeneratedSegment, SegmentJob, TokenStep,
    segment_seed,
)
from seqopt_core.types import Segment

SAMPLE_RATE = 24_000
SAMPLES_PER_TOKEN = 960
VOCABULARY = 4096


class SineOptions(BaseModel):
    """The ``[engine.options]`` of ``engine = "sine"`` (validated by seqopt with this model)."""

    model_config = ConfigDict(extra="forbid")

    pitch_hz: float = Field(220.0, gt=0, le=4000, description="frequency of token 0")
    tokens_per_text_char: float = Field(0.5, gt=0, le=8, description="speech tokens per text character")
    stop_probability: float = Field(0.0, ge=0, lt=1, description="chance of a stop token per decode step")
    fail_after_steps: int | None = Field(None, ge=0, description="each batch fails after this many steps")
    fail_above_rows: int | None = Field(None, ge=0, description="RuntimeError above this many rows")
    oom_above_rows: int | None = Field(None, ge=0, description="MemoryError above this many rows")
    step_sleep_seconds: float = Field(0.0, ge=0, le=1, description="each token step also sleeps this long")
    decode_sleep_seconds: float = Field(0.0, ge=0, le=1, description="each decode also sleeps this long")


class _Row:
    def __init__(self, job: SegmentJob, limit: int) -> None:
        self.job, self.limit, self.tokens, self.seconds = job, limit, [], 0.0
        seed = None if job.seed is None else f"{segment_seed(job.seed, job.segment.index)}:{job.prompt_tokens}"
        self.rng = random.Random(seed)


class SineBatch:
    """Rows generated together (implements :class:`seqopt_core.engine.TokenBatch`)."""

    def __init__(self, engine: SineEngine) -> None:
        self.engine, self.steps, self.closed = engine, 0, False
        self._rows: list[_Row] = []
        #: Keys of the rows :meth:`drop` took out.
        self.dropped: list[int] = []

    @property
    def rows(self) -> int:
        return len(self._rows)

    @property
    def jobs(self) -> list[SegmentJob]:
        """The jobs in flight (for tests)."""
        return [row.job for row in self._rows]

    def step(self, joining: Sequence[SegmentJob] = ()) -> list[TokenStep]:
        o = self.engine.options
        held = len(self._rows) + len(joining)
        if o.oom_above_rows is not None and held > o.oom_above_rows:
            raise MemoryError(f"sine: {held} rows do not fit (oom_above_rows={o.oom_above_rows})")
        if o.fail_above_rows is not None and held > o.fail_above_rows:
            raise RuntimeError(f"sine: injected failure with {held} rows")
        if o.fail_after_steps is not None and self.steps >= o.fail_after_steps:
            raise RuntimeError(f"sine: injected failure after {self.steps} steps")
        self.steps += 1
        started = time.perf_counter()
        if o.step_sleep_seconds:
            time.sleep(o.step_sleep_seconds)
        if joining:  # prefill: the joining rows sample their first tokens
            ran = [_Row(job, self.engine.speech_token_limit(job.segment)) for job in joining]
            self._rows.extend(ran)
        else:  # one decode step of every row in flight
            ran = list(self._rows)
        drawn: list[tuple[_Row, int | None, str | None]] = []
        for row in ran:
            token = row.rng.randrange(VOCABULARY)
            if row.tokens and row.rng.random() < o.stop_probability:
                drawn.append((row, None, "stop_token"))  # stopped without a new token
            else:
                row.tokens.append(token)
                drawn.append((row, token, "length_limit" if len(row.tokens) >= row.limit else None))
        self.engine.stage_log.append(("tokens", started, time.perf_counter()))
        share = (time.perf_counter() - started) / max(1, len(ran))  # each row's share of the step
        out: list[TokenStep] = []
        for row, token, stopped in drawn:
            row.seconds += share
            finished = None
            if stopped is not None:  # the row leaves the batch with its result
                self._rows.remove(row)
                finished = GeneratedSegment(tuple(row.tokens), stopped, len(row.job.segment.text) + 2,
                                            row.seconds)
            out.append(TokenStep(row.job, token, finished))
        return out

    def drop(self, jobs: Sequence[SegmentJob]) -> None:
        """These jobs' rows leave now (``dropped`` records their keys)."""
        keys = {job.key for job in jobs}
        self.dropped.extend(row.job.key for row in self._rows if row.job.key in keys)
        self._rows = [row for row in self._rows if row.job.key not in keys]

    def close(self) -> None:
        self._rows.clear()
        self.closed = True


class SineDecoder:
    """Tokens to sine audio (implements :class:`seqopt_core.engine.ChunkDecoder`)."""

    def __init__(self, engine: SineEngine) -> None:
        self.engine, self.phase = engine, 0.0

    def decode(self, tokens: Sequence[int], context: int, *, last: bool) -> DecodedAudio:
        started = time.perf_counter()
        if self.engine.options.decode_sleep_seconds and tokens:
            time.sleep(self.engine.options.decode_sleep_seconds)
        t = np.arange(SAMPLES_PER_TOKEN, dtype=np.float64) / SAMPLE_RATE
        parts = []
        for token in tokens:
            hz = self.engine.options.pitch_hz * (1 + (token % 12) / 12)
            parts.append(0.3 * np.sin(self.phase + 2 * math.pi * hz * t))
            self.phase = (self.phase + 2 * math.pi * hz * SAMPLES_PER_TOKEN / SAMPLE_RATE) % (2 * math.pi)
        audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        vocoder = time.perf_counter() - started
        self.engine.stage_log.append(("decode", started, time.perf_counter()))
        return DecodedAudio(audio, vocoder, time.perf_counter() - started)  # no post-processing


class SineEngine:
    """Implements :class:`seqopt_core.engine.Engine` with no model at all."""

    sample_rate = SAMPLE_RATE

    def __init__(self, options: SineOptions | None = None, runtime: EngineRuntime | None = None,
                 locks: tuple[Any, Any] | None = None) -> None:
        self.options = options if options is not None else SineOptions()
        self.runtime = runtime if runtime is not None else EngineRuntime()
        # one lock per stage, shared by configured() copies
        self._locks = locks if locks is not None else (threading.RLock(), threading.RLock())
        #: ``(stage, start, end)`` of every token step and decode (perf_counter seconds).
        self.stage_log: list[tuple[str, float, float]] = []
        #: How many calls each decode_batch got.
        self.decode_batches: list[int] = []

    def describe(self) -> dict[str, Any]:
        return {"name": "sine", "device": "cpu", "random_weights": False}

    def configured(self, options: Any) -> SineEngine:
        options = SineOptions.model_validate(options.model_dump() if isinstance(options, BaseModel) else options)
        return self if options == self.options else SineEngine(options, self.runtime, self._locks)

    @contextmanager
    def work(self, attention: AttentionSettings | None = None, *, stage: str = "all") -> Iterator[None]:
        """The stage's lock (both for ``all``, tokens first); there is no attention to set."""
        tokens, decode = self._locks
        held = {"tokens": (tokens,), "decode": (decode,), "all": (tokens, decode)}[stage]
        for lock in held:
            lock.acquire()
        try:
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    def with_voice(self, path: Any) -> SineEngine:
        """A voice is a pitch: 110-740 Hz from the file's bytes (a missing file is an error)."""
        from pathlib import Path

        from seqopt_core.errors import SeqoptError

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SeqoptError(f"cannot read voice file {str(path)!r}: {exc.strerror}") from None
        pitch = 110.0 + 10.0 * (sum(data) % 64)
        return self.configured(self.options.model_copy(update={"pitch_hz": pitch}))

    def open_batch(self, attention: AttentionSettings | None = None) -> SineBatch:
        return SineBatch(self)

    def decoder(self, job: SegmentJob, *, crossfade_ms: float) -> SineDecoder:
        return SineDecoder(self)

    def decode_batch(self, calls: Sequence[DecodeCall]) -> list[DecodedAudio]:
        if len({id(c.decoder) for c in calls}) != len(calls):
            raise ValueError("decode_batch: a decoder appears twice in one batch")
        self.decode_batches.append(len(calls))
        return [c.decoder.decode(c.tokens, c.context, last=c.last) for c in calls]

    def speech_token_limit(self, segment: Segment, text_tokens: int | None = None) -> int:
        return max(1, math.ceil(len(segment.text) * self.options.tokens_per_text_char))

    def batch_capacity(self, jobs: Sequence[SegmentJob]) -> int:
        limit = self.options.oom_above_rows
        return 8 if limit is None else max(1, limit)

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return isinstance(exc, MemoryError)

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory_bytes(self) -> int | None:
        return None


def load_sine(options: SineOptions, runtime: EngineRuntime) -> SineEngine:
    return SineEngine(options, runtime)


@hookimpl
def seqopt_engines() -> list[EngineSpec]:
    return [EngineSpec(name="sine", factory=load_sine, options=SineOptions, uses_attention=False,
                       batched_decode=True, concurrent_stages=True, voices=True, cheap_to_build=True, description="sine tones, one per speech token (test engine)")]
