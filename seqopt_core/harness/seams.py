"""How smooth the joins in streamed audio are: the discontinuity at each seam.

A streamed text is the concatenation of chunks. Where two chunks meet, a bare
join can jump: the next chunk starts at a sample value unrelated to where the
last one ended (a click). The measure at a seam is the jump between the two
samples that meet, divided by the typical sample-to-sample step of the audio
around it (the median absolute first difference over ``window`` samples on each
side, the seam's own step left out). Up to about 1.5 the seam looks like the
audio around it (a sine's steepest step is 1.4 times its median step); 10 means
a jump ten times the usual step.

Only numpy (no torch). With random weights the "audio" is noise, so the
numbers describe the joining method (crossfade or not), not speech quality.

    >>> import numpy as np
    >>> t = np.arange(48_000) / 24_000
    >>> smooth = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    >>> seam_ratio(smooth, 24_011) < 1.5               # a seam inside a smooth signal
    True
    >>> broken = smooth.copy(); broken[24_011:] *= -1  # the rest flips sign: a click
    >>> seam_ratio(broken, 24_011) > 10
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Samples on each side of a seam for the local step size (10 ms at 24 kHz).
DEFAULT_WINDOW = 240
#: Samples at each end of a segment for :func:`edge_level` (2 ms at 24 kHz).
DEFAULT_EDGE = 48
_EPS = 1e-9


def seam_ratio(audio: np.ndarray, seam: int, window: int = DEFAULT_WINDOW) -> float:
    """Jump at ``seam`` (between samples ``seam - 1`` and ``seam``) over the local step."""
    if not 0 < seam < len(audio):
        raise ValueError(f"seam {seam} is not inside audio of {len(audio)} samples")
    x = np.asarray(audio, dtype=np.float64)
    lo, hi = max(0, seam - window), min(len(x), seam + window)
    steps = np.abs(np.diff(x[lo:hi]))
    jump = abs(x[seam] - x[seam - 1])
    around = np.delete(steps, seam - 1 - lo) if len(steps) > 1 else steps
    return float(jump / (np.median(around) + _EPS))


def edge_level(audio: np.ndarray, start: int, end: int, edge: int = DEFAULT_EDGE) -> float:
    """How abruptly the audio in ``[start, end)`` begins and ends: the peak level in its
    first and last ``edge`` samples over the span's RMS (the larger of the two).

    0 means it starts and ends in silence; about 1 or more means it starts or stops
    at full level, which against the silence of a pause is a click.
    """
    x = np.asarray(audio[start:end], dtype=np.float64)
    if len(x) == 0:
        return 0.0
    rms = float(np.sqrt(np.mean(x * x)))
    n = min(edge, len(x))
    peak = max(float(np.max(np.abs(x[:n]))), float(np.max(np.abs(x[-n:]))))
    return peak / (rms + _EPS)


@dataclass(frozen=True)
class SeamReport:
    """The joins of one run: ``chunk_ratios`` (:func:`seam_ratio` where two chunks of a
    segment meet) and ``edge_levels`` (:func:`edge_level` of each segment's audio)."""

    chunk_ratios: tuple[float, ...]
    edge_levels: tuple[float, ...]

    @staticmethod
    def _stats(values: Sequence[float]) -> dict[str, Any]:
        if not values:
            return {"count": 0, "median": None, "max": None}
        return {"count": len(values), "median": float(np.median(values)), "max": float(max(values))}

    def to_dict(self) -> dict[str, Any]:
        return {"chunk_seams": self._stats(self.chunk_ratios),
                "segment_edges": self._stats(self.edge_levels)}


def measure_seams(audio: np.ndarray, chunk_seams: Sequence[int],
                  segments: Sequence[tuple[int, int]], window: int = DEFAULT_WINDOW) -> SeamReport:
    """:func:`seam_ratio` at each chunk seam inside ``audio`` and :func:`edge_level` of
    each segment's ``(start, end)`` span (its speech, without the pause after it)."""
    ratios = tuple(seam_ratio(audio, s, window) for s in chunk_seams if 0 < s < len(audio))
    return SeamReport(ratios, tuple(edge_level(audio, a, b) for a, b in segments if b > a))
