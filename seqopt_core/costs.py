"""What model work costs on this machine, fitted from what runs measured.

A vocoder call (S3Gen) costs about a fixed part (the voice prompt re-run, the
flow-matching steps) plus a part per token it decodes (context re-read plus new
tokens); a T3 step of one streamed segment costs about the same every step.
:func:`fit_costs` fits both from a run's :class:`~seqopt_core.types.ChunkEvent`
records, which carry the measured seconds, so nothing is timed twice and
nothing is patched. ``seqopt speak --metrics`` and ``seqopt compare`` report the
fit; ``seqopt costs`` measures it on purpose (:func:`measure_costs`: one short
text at several chunk sizes) and writes it as JSON for the device. Pure Python
(:func:`measure_costs` loads the engine through the pipeline when called).

    >>> from seqopt_core.types import ChunkEvent
    >>> events = [ChunkEvent(0, i, n, n / 25, 0.0, 0.0, s3gen_seconds=2.0 + 0.1 * (n + c),
    ...                      context_tokens=c, t3_seconds=0.02 * n) for i, (n, c) in enumerate([(10, 0), (25, 10), (40, 25)])]
    >>> cost = fit_costs(events)["vocoder"]
    >>> round(cost.fixed_seconds, 3), round(cost.per_token_seconds, 3), cost.samples
    (2.0, 0.1, 3)
    >>> round(cost.predict(50), 3)
    7.0
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .types import ChunkEvent


@dataclass(frozen=True)
class LinearCost:
    """``fixed_seconds + per_token_seconds * tokens``, fitted from ``samples`` measurements."""

    fixed_seconds: float
    per_token_seconds: float
    samples: int

    def predict(self, tokens: int) -> float:
        return self.fixed_seconds + self.per_token_seconds * tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_linear(points: Sequence[tuple[float, float]]) -> LinearCost | None:
    """Least-squares ``seconds = fixed + per_token * tokens`` over ``(tokens, seconds)``
    points; ``None`` without two distinct token counts. Neither part is allowed below
    zero: a negative one is set to zero and the other fitted alone."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    fixed = mean_y - slope * mean_x
    if slope < 0:  # more tokens never cost less: a constant cost
        slope, fixed = 0.0, mean_y
    elif fixed < 0:  # no negative fixed part: through the origin
        fixed, slope = 0.0, sum(x * y for x, y in points) / sum(x * x for x, _ in points)
    return LinearCost(fixed, slope, n)


def fit_costs(chunks: Sequence[ChunkEvent]) -> dict[str, Any]:
    """The vocoder's :class:`LinearCost` over the tokens each call decoded (context +
    new) and the median seconds of a streamed T3 step, from chunk events in the order
    runs delivered them (one run or several after one another).

    Only chunks that called the vocoder count (``speech_tokens > 0``); T3 steps are
    read from streamed chunks (``queue_seconds == 0``) that are not a segment's first:
    the first holds the prompt's prefill. A segment's first chunk is the first event,
    one that starts a run (``chunk_index == 0``), or one whose segment differs from the
    event before. Either result is ``None`` when there is too little to fit.
    """
    calls: list[tuple[float, float]] = []
    steps: list[float] = []
    previous: ChunkEvent | None = None
    for c in chunks:
        first = previous is None or c.chunk_index == 0 or c.segment_index != previous.segment_index
        previous = c
        if c.speech_tokens <= 0:
            continue
        if c.s3gen_seconds > 0:
            calls.append((c.context_tokens + c.speech_tokens, c.s3gen_seconds))
        if not first and c.queue_seconds == 0 and c.t3_seconds > 0:
            steps.append(c.t3_seconds / c.speech_tokens)
    return {"vocoder": fit_linear(calls),
            "t3_step_seconds": statistics.median(steps) if steps else None,
            "t3_steps_measured": len(steps)}


def costs_json(chunks: Sequence[ChunkEvent]) -> dict[str, Any]:
    """:func:`fit_costs` as plain JSON values (what ``--metrics``, ``seqopt compare`` and
    ``seqopt costs`` write)."""
    fitted = fit_costs(chunks)
    vocoder = fitted["vocoder"]
    return {**fitted, "vocoder": None if vocoder is None else vocoder.to_dict()}


#: What :func:`measure_costs` synthesizes: one sentence (59 text tokens), one segment with every profile.
CALIBRATION_TEXT = "The quick brown fox jumps over the lazy dog, then runs back to the old fence by the river."
#: Chunk sizes :func:`measure_costs` decodes with, in speech tokens.
CALIBRATION_SIZES = (10, 25, 50)


def measure_costs(config: Any, host: Any, *, sizes: Sequence[int] = CALIBRATION_SIZES,
                  text: str = CALIBRATION_TEXT, engine: Any = None,
                  on_chunk: Any = None) -> dict[str, Any]:
    """Synthesize ``text`` once per chunk size in ``sizes`` (fixed chunks, no context,
    one segment at a time) with ``config``'s engine, and fit what the work cost.

    ``engine`` reuses a loaded engine; ``on_chunk(size, event)`` hears every chunk.
    Returns the engine's :meth:`~seqopt_core.engine.Engine.describe`, the sizes, every
    call's ``(tokens, seconds)`` and the fit (:func:`fit_costs`).
    """
    from .api import as_loaded_config
    from .pipeline import Pipeline

    if not sizes or any(n < 1 for n in sizes):
        raise ValueError(f"chunk sizes must be whole numbers of at least 1, got {list(sizes)}")
    if engine is None:
        engine = Pipeline.from_config(config, host=host).engine
    events: list[ChunkEvent] = []
    for size in sizes:
        loaded = as_loaded_config(config, overrides={
            "chunk_policy": {"name": "fixed", "options": {"chunk_size": int(size)}},
            "context_policy": {"name": "fixed", "options": {"context_window": 0}},
            "synthesis": {"batch_size": 1}}, validate=False)
        pipeline = Pipeline.from_config(loaded, host=host, engine=engine)
        for chunk in pipeline.stream(text):
            if on_chunk is not None:
                on_chunk(size, chunk.event)
        assert pipeline.last_metrics is not None
        events.extend(pipeline.last_metrics.chunks)
    return {"engine": engine.describe(), "sizes": [int(n) for n in sizes], "text": text,
            "calls": [[c.context_tokens + c.speech_tokens, c.s3gen_seconds] for c in events
                      if c.speech_tokens > 0 and c.s3gen_seconds > 0],
            **costs_json(events)}


__all__ = ["CALIBRATION_SIZES", "CALIBRATION_TEXT", "LinearCost", "costs_json", "fit_costs", "fit_linear",
           "measure_costs"]
