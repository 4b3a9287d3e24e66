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

import hashlib
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
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


# -- the cost model a chunk policy plans with ------------------------------------------------

#: Speech tokens per second of audio (what one token of audio lasts: 40 ms).
TOKENS_PER_SECOND = 25.0


class CostModelError(ValueError):
    """A stored cost model that cannot be used (says which file and which value)."""


@dataclass(frozen=True)
class CostModel:
    """What making a chunk costs on this device, for one engine and voice.

    A chunk of ``n`` new tokens re-reading ``c`` tokens of context costs, when it is
    streamed: ``n`` T3 steps (plus the prefill on a segment's first chunk), then one
    decode of ``c + n`` tokens (vocoder plus watermark):
    ``decode_fixed_seconds + decode_per_token_seconds * (c + n)``.

        >>> m = CostModel(0.4, 0.002, 0.013)
        >>> round(m.chunk_seconds(20, 10), 3)
        0.72
        >>> m.keeps_real_time()
        True
    """

    decode_fixed_seconds: float
    decode_per_token_seconds: float
    t3_step_seconds: float
    t3_prefill_seconds: float = 0.0
    #: Where the figures come from (a file, a measurement at load), for reports.
    source: str = "given"

    def __post_init__(self) -> None:
        for name in ("decode_fixed_seconds", "decode_per_token_seconds", "t3_step_seconds",
                     "t3_prefill_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise CostModelError(f"{name} must be a finite number of seconds >= 0, got {value!r}")

    def decode_seconds(self, tokens: int) -> float:
        """One decode of ``tokens`` tokens (context plus new)."""
        return self.decode_fixed_seconds + self.decode_per_token_seconds * tokens

    def chunk_seconds(self, new_tokens: int, context_tokens: int = 0, *, prefill: bool = False) -> float:
        """A streamed chunk: its T3 steps (and prefill), then its decode."""
        t3 = self.t3_step_seconds * new_tokens + (self.t3_prefill_seconds if prefill else 0.0)
        return t3 + self.decode_seconds(context_tokens + new_tokens)

    @property
    def marginal_seconds(self) -> float:
        """What one more token in a chunk costs: a T3 step and its share of the decode."""
        return self.t3_step_seconds + self.decode_per_token_seconds

    def keeps_real_time(self, margin: float = 1.0) -> bool:
        """Whether a token can be made faster than it plays (``margin`` < 1 asks for slack):
        then chunks large enough amortize the fixed cost and streaming never stalls."""
        return self.marginal_seconds < margin / TOKENS_PER_SECOND

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> CostModel:
        """From :meth:`to_dict`'s keys, or from what ``seqopt costs`` writes."""
        if "vocoder" in data and "decode_fixed_seconds" not in data:  # a `seqopt costs` result
            vocoder, step = data.get("vocoder"), data.get("t3_step_seconds")
            if not vocoder or step is None:
                raise CostModelError("the measurement has no fitted vocoder cost or T3 step (too few "
                                     "calls of different sizes); measure again with `seqopt costs`")
            data = {"decode_fixed_seconds": vocoder["fixed_seconds"],
                    "decode_per_token_seconds": vocoder["per_token_seconds"],
                    "t3_step_seconds": step, "t3_prefill_seconds": data.get("t3_prefill_seconds") or 0.0}
        known = {"decode_fixed_seconds", "decode_per_token_seconds", "t3_step_seconds",
                 "t3_prefill_seconds", "source"}
        missing = sorted(known - {"t3_prefill_seconds", "source"} - set(data))
        if missing:
            raise CostModelError(f"missing {', '.join(missing)}")
        values = {k: data[k] for k in known if k in data}
        if source is not None:
            values["source"] = source
        return cls(**values)


def load_cost_model(path: str | os.PathLike[str]) -> CostModel:
    """A cost model from a JSON file (:meth:`CostModel.to_dict` or ``seqopt costs -o``)."""
    where = Path(path)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CostModelError(f"cost file {str(where)!r} does not exist; write one with "
                             "`seqopt costs -o costs.json`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CostModelError(f"cannot read cost file {str(where)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise CostModelError(f"cost file {str(where)!r} holds no JSON object")
    inner = data.get("source")
    try:
        return CostModel.from_dict(data, source=f"{where} ({inner})" if inner else str(where))
    except (CostModelError, TypeError, KeyError) as exc:
        raise CostModelError(f"cost file {str(where)!r}: {exc}") from None


def cost_cache_dir() -> Path:
    """Where measured cost models are kept per device: ``$SEQOPT_CACHE_DIR/costs``, else
    ``$XDG_CACHE_HOME/seqopt/costs``, else ``~/.cache/seqopt/costs``."""
    root = os.environ.get("SEQOPT_CACHE_DIR")
    if root:
        return Path(root) / "costs"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "seqopt" / "costs"


def cost_cache_path(key: Mapping[str, Any]) -> Path:
    """The cache file of the cost model measured for ``key`` (what the costs depend on:
    engine, device, dtype, size, the options that change the work, threads)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cost_cache_dir() / f"{key.get('name', 'engine')}-{key.get('device', 'device')}-{digest}.json"


def save_cost_model(model: CostModel, path: Path, key: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (and the ``key`` it was measured for) as JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**model.to_dict(), "key": dict(key or {})}, indent=1, default=str),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


#: The chunks :func:`calibration_chunks` asks for: a small one (it also holds the
#: prefill), a larger one (T3 steps and a decode of another size), a small one again
#: (the first call of a process can be slow: the faster of the two small ones counts).
CALIBRATION_CHUNKS = (8, 24, 8)


def cost_model_from_chunks(chunks: Sequence[tuple[int, int, float, float]], *,
                           source: str) -> CostModel:
    """Fit a :class:`CostModel` from one segment's first streamed chunks, each
    ``(new tokens, context tokens, t3 seconds, decode seconds)``, in order.

    T3's step is the median per-token time of the chunks after the first; the
    prefill is what the first chunk's T3 time exceeds its steps by; the decode cost
    is fitted over the calls (the faster call of each size: a first call can carry
    one-time set-up). With a single size, the decode is taken as all fixed.
    """
    if not chunks:
        raise CostModelError("no chunk was measured")
    later = [t3 / n for n, _, t3, _ in chunks[1:] if n > 0]
    first_n, _, first_t3, _ = chunks[0]
    step = statistics.median(later) if later else (first_t3 / first_n if first_n else 0.0)
    prefill = max(0.0, first_t3 - step * first_n)
    fastest: dict[int, float] = {}
    for n, ctx, _, seconds in chunks:
        if n > 0:
            fastest[n + ctx] = min(seconds, fastest.get(n + ctx, math.inf))
    fit = fit_linear(sorted(fastest.items()))
    if fit is None:
        fixed, per_token = min(fastest.values(), default=0.0), 0.0
    else:
        fixed, per_token = fit.fixed_seconds, fit.per_token_seconds
    return CostModel(fixed, per_token, step, prefill, source=source)


__all__ = ["CALIBRATION_CHUNKS", "CALIBRATION_SIZES", "CALIBRATION_TEXT", "CostModel", "CostModelError",
           "LinearCost", "TOKENS_PER_SECOND", "cost_cache_dir", "cost_cache_path", "cost_model_from_chunks",
           "costs_json", "fit_costs", "fit_linear", "load_cost_model", "measure_costs", "save_cost_model"]
