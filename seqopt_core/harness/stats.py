"""Statistics of repeated measurements: medians, spread and paired ratios.

    >>> s = summarize([3.0, 1.0, 2.0])
    >>> s["median"], s["min"], s["max"]
    (2.0, 1.0, 3.0)
    >>> paired_ratio([2.0, 4.0], [1.0, 2.0])["median"]   # B/A within each round
    0.5
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linear interpolation between ranks."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """Median, min, max and quartiles of ``samples`` (which must not be empty)."""
    if not samples:
        raise ValueError("no samples to summarize")
    return {
        "n": len(samples),
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "q1": percentile(samples, 25),
        "q3": percentile(samples, 75),
    }


def paired_ratio(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, float | int] | None:
    """``b[i] / a[i]`` for each round ``i`` where both exist (and ``a[i]`` is not 0), summarized.

    Rounds are paired because they ran side by side (A then B): a burst of other
    work on the machine slows both sides of a round alike, so the ratio within a
    round is steadier than a ratio of medians. None when no round pairs up.
    """
    ratios = [y / x for x, y in zip(a, b) if x and y is not None and math.isfinite(x) and math.isfinite(y)]
    return summarize(ratios) if ratios else None


def playback_stalls(chunks: Sequence[tuple[float, float]]) -> dict[str, float | int]:
    """How a listener who starts playing at the first chunk would hear the stream.

    ``chunks`` are ``(ready_at_seconds, audio_seconds)`` in stream order. Playback
    starts when the first chunk is ready and plays each chunk after the previous
    one; a chunk not ready when the previous one ends leaves a silent gap (a
    stall). Returns the number of stalls, their total and longest seconds.

    >>> playback_stalls([(1.0, 2.0), (2.5, 2.0), (6.0, 1.0)])   # the third is 1 s late
    {'stalls': 1, 'stall_seconds': 1.0, 'longest_stall_seconds': 1.0}
    >>> playback_stalls([])["stalls"]
    0
    """
    stalls, total, longest = 0, 0.0, 0.0
    clock: float | None = None  # when the audio handed out so far finishes playing
    for ready, seconds in chunks:
        if clock is None:
            clock = ready
        elif ready > clock:
            gap = ready - clock
            stalls, total, longest = stalls + 1, total + gap, max(longest, gap)
            clock = ready
        clock += seconds
    return {"stalls": stalls, "stall_seconds": total, "longest_stall_seconds": longest}
