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
