"""What ``seqopt serve`` shows at ``GET /metrics``, and how a stream's stalls are counted.

:class:`ServerMetrics` keeps the server's counters, gauges and histograms and writes
them in the Prometheus text exposition format, version 0.0.4 (:data:`CONTENT_TYPE`),
with no dependency: ``# HELP`` and ``# TYPE`` lines, histograms as cumulative
``_bucket{le="..."}`` samples ending in ``+Inf``, then ``_sum`` and ``_count``. It is
thread-safe: the server's request handlers and its scheduler thread may call it at once.

The metrics (all prefixed ``seqopt_``):

==========================================  =========  ==========================================
``time_to_first_audio_seconds``             histogram  request received to first audio sent
``real_time_factor``                        histogram  wall seconds per second of audio of a stream
``requests_total{status="..."}``            counter    requests answered, by HTTP status
``audio_seconds_total``                     counter    seconds of audio sent
``s3gen_calls_total``                       counter    S3Gen decodes run for streams
``playback_stalls_total``                   counter    times a client ran out of audio mid-stream
``playback_stall_seconds_total``            counter    seconds clients waited in those stalls
``active_streams``                          gauge      streams sending audio now
``queued_requests``                         gauge      requests admitted but waiting to start
``t3_batch_rows``                           gauge      rows in the T3 batch now
==========================================  =========  ==========================================

Gauges: ``active_streams`` follows :meth:`ServerMetrics.stream_started` and
:meth:`ServerMetrics.stream_finished`; ``queued_requests`` follows
:meth:`ServerMetrics.request_queued` and :meth:`ServerMetrics.request_left_queue`;
``t3_batch_rows`` is 0 until set. Any of the three can instead be read from a callback
at each :meth:`ServerMetrics.render` (``ServerMetrics(gauges={"seqopt_t3_batch_rows":
scheduler_rows})``, or :meth:`ServerMetrics.watch_gauge`), or set to a value
(:meth:`ServerMetrics.set_gauge`); a callback that fails shows as ``NaN``.

:class:`PlaybackTracker` replays one stream's chunks on the wall clock as its client
hears them, to count stalls. Pure (the time is passed in), like
:class:`seqopt_core.playback.PlaybackClock`, which does the same on modeled time.

    >>> tracker = PlaybackTracker()
    >>> tracker.chunk(now=1.0, audio_seconds=0.5)   # first audio: playing until 1.5
    0.0
    >>> tracker.chunk(now=2.0, audio_seconds=0.5)   # 0.5 s late: the client waited
    0.5
    >>> tracker.stalls, tracker.stall_seconds, tracker.first_audio_at
    (1, 0.5, 1.0)
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Mapping

#: The ``Content-Type`` of :meth:`ServerMetrics.render`'s text.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Bucket bounds of the time-to-first-audio histogram, seconds: a GPU's tens of
#: milliseconds to a loaded CPU's minutes.
TTFA_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0,
                30.0, 60.0, 120.0)
#: Bucket bounds of the real-time-factor histogram (below 1: faster than real time).
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)

TTFA = "seqopt_time_to_first_audio_seconds"
RTF = "seqopt_real_time_factor"
REQUESTS = "seqopt_requests_total"
AUDIO_SECONDS = "seqopt_audio_seconds_total"
S3GEN_CALLS = "seqopt_s3gen_calls_total"
STALLS = "seqopt_playback_stalls_total"
STALL_SECONDS = "seqopt_playback_stall_seconds_total"
ACTIVE_STREAMS = "seqopt_active_streams"
QUEUED_REQUESTS = "seqopt_queued_requests"
T3_BATCH_ROWS = "seqopt_t3_batch_rows"

_HELP = {
    TTFA: "Seconds from a speech request's arrival to its first audio sent.",
    RTF: "Real-time factor of a finished stream: wall seconds per second of audio (lower is faster).",
    REQUESTS: "Requests answered, by HTTP status.",
    AUDIO_SECONDS: "Seconds of audio sent to clients.",
    S3GEN_CALLS: "S3Gen decodes run for streams.",
    STALLS: "Times a client ran out of audio before the next chunk arrived.",
    STALL_SECONDS: "Seconds clients waited with nothing to play.",
    ACTIVE_STREAMS: "Speech streams sending audio now.",
    QUEUED_REQUESTS: "Speech requests admitted and waiting to start.",
    T3_BATCH_ROWS: "Rows in the T3 batch now.",
}
#: The gauges, which a callback or :meth:`ServerMetrics.set_gauge` may drive.
GAUGE_NAMES = (ACTIVE_STREAMS, QUEUED_REQUESTS, T3_BATCH_ROWS)


def format_value(value: float) -> str:
    """A sample value as the exposition format writes it (``+Inf``, ``-Inf``, ``NaN``).

    >>> [format_value(v) for v in (3, 0.25, 1e-07, float("inf"), float("nan"))]
    ['3', '0.25', '1e-07', '+Inf', 'NaN']
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(float(value))


def escape_label_value(value: str) -> str:
    r"""A label value with ``\``, ``"`` and newlines escaped, as the format requires.

    >>> print(escape_label_value('a "b"\\c' + "\n"))
    a \"b\"\\c\n
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _bound(value: float) -> str:
    """A bucket bound for ``le``: always with a decimal point or exponent (``1.0``, ``0.05``)."""
    return "+Inf" if math.isinf(value) else repr(float(value))


class Histogram:
    """Observations counted in fixed buckets (not thread-safe; :class:`ServerMetrics` locks)."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(float(bound) for bound in bounds)
        if not self.bounds or list(self.bounds) != sorted(set(self.bounds)) \
                or not all(math.isfinite(bound) for bound in self.bounds):
            raise ValueError(f"histogram bounds must be finite and strictly increasing, not {bounds!r}")
        #: Observations in each bucket, not cumulative; the last is the one above every bound.
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts):
            running += count
            out.append(f'{name}_bucket{{le="{_bound(bound)}"}} {running}')
        out.append(f"{name}_sum {format_value(self.sum)}")
        out.append(f"{name}_count {self.count}")
        return out


def _non_negative(what: str, value: float) -> float:
    value = float(value)
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{what} must be a finite number of at least 0, not {value!r}")
    return value


class ServerMetrics:
    """The server's metrics (see the module doc); :meth:`render` writes them all.

    ``gauges`` maps gauge names (:data:`GAUGE_NAMES`) to callables read at each render.
    """

    def __init__(self, gauges: Mapping[str, Callable[[], float]] | None = None) -> None:
        self._lock = threading.Lock()
        self._ttfa = Histogram(TTFA_BUCKETS)
        self._rtf = Histogram(RTF_BUCKETS)
        self._requests: dict[str, int] = {"200": 0}
        self._counters = {AUDIO_SECONDS: 0.0, S3GEN_CALLS: 0.0, STALLS: 0.0, STALL_SECONDS: 0.0}
        self._gauges: dict[str, float] = {name: 0.0 for name in GAUGE_NAMES}
        self._callbacks: dict[str, Callable[[], float]] = {}
        for name, callback in (gauges or {}).items():
            self.watch_gauge(name, callback)

    # -- gauges -------------------------------------------------------------------------

    @staticmethod
    def _check_gauge(name: str) -> None:
        if name not in GAUGE_NAMES:
            raise ValueError(f"unknown gauge {name!r}; the gauges are {', '.join(GAUGE_NAMES)}")

    def watch_gauge(self, name: str, callback: Callable[[], float]) -> None:
        """Read gauge ``name`` from ``callback()`` at each render (it replaces the kept value)."""
        self._check_gauge(name)
        if not callable(callback):
            raise TypeError(f"the callback for gauge {name!r} must be callable, not {callback!r}")
        with self._lock:
            self._callbacks[name] = callback

    def set_gauge(self, name: str, value: float) -> None:
        """Set gauge ``name`` to ``value`` (and stop reading it from a callback)."""
        self._check_gauge(name)
        with self._lock:
            self._callbacks.pop(name, None)
            self._gauges[name] = float(value)

    def _add_to_gauge(self, name: str, delta: float) -> None:
        with self._lock:
            self._gauges[name] = max(0.0, self._gauges[name] + delta)

    def request_queued(self) -> None:
        """A request was admitted to wait for a place among the active streams."""
        self._add_to_gauge(QUEUED_REQUESTS, 1)

    def request_left_queue(self) -> None:
        """A queued request started, or left (its client went away)."""
        self._add_to_gauge(QUEUED_REQUESTS, -1)

    # -- requests and streams -----------------------------------------------------------

    def request_finished(self, status: int | str) -> None:
        """A request was answered with HTTP ``status`` (counted in ``requests_total``)."""
        label = str(status)
        with self._lock:
            self._requests[label] = self._requests.get(label, 0) + 1

    def stream_started(self) -> None:
        """A speech stream started (``active_streams`` + 1)."""
        self._add_to_gauge(ACTIVE_STREAMS, 1)

    def stream_finished(self, ttfa: float | None, rtf: float | None, audio_seconds: float = 0.0,
                        s3gen_calls: int = 0, stalls: int = 0, stall_seconds: float = 0.0) -> None:
        """A stream ended, finished or not (``active_streams`` - 1), and what it did.

        ``ttfa`` is ``None`` for a stream that sent no audio, ``rtf`` ``None`` (or
        infinite) for one without audio: neither is then observed. Every number must be
        at least 0 (NaN is refused); a refused call records nothing.
        """
        audio_seconds = _non_negative("audio_seconds", audio_seconds)
        s3gen_calls = _non_negative("s3gen_calls", s3gen_calls)
        stalls = _non_negative("stalls", stalls)
        stall_seconds = _non_negative("stall_seconds", stall_seconds)
        if ttfa is not None:
            ttfa = _non_negative("ttfa", ttfa)
        if rtf == math.inf:  # the RTF of no audio (wall seconds / 0)
            rtf = None
        if rtf is not None:
            rtf = _non_negative("rtf", rtf)
        with self._lock:
            self._gauges[ACTIVE_STREAMS] = max(0.0, self._gauges[ACTIVE_STREAMS] - 1)
            if ttfa is not None:
                self._ttfa.observe(ttfa)
            if rtf is not None:
                self._rtf.observe(rtf)
            self._counters[AUDIO_SECONDS] += audio_seconds
            self._counters[S3GEN_CALLS] += s3gen_calls
            self._counters[STALLS] += stalls
            self._counters[STALL_SECONDS] += stall_seconds

    # -- exposition ---------------------------------------------------------------------

    def render(self) -> str:
        """Every metric in the text exposition format 0.0.4 (ends with a newline)."""
        with self._lock:
            ttfa = self._ttfa.lines(TTFA)
            rtf = self._rtf.lines(RTF)
            requests = sorted(self._requests.items(), key=lambda item: item[0])
            counters = dict(self._counters)
            gauges = dict(self._gauges)
            callbacks = dict(self._callbacks)
        for name, callback in callbacks.items():  # outside the lock: a callback may take its own
            try:
                gauges[name] = float(callback())
            except Exception:  # noqa: BLE001 - a broken callback must not break /metrics
                gauges[name] = math.nan

        lines: list[str] = []

        def family(name: str, kind: str, samples: list[str]) -> None:
            lines.append(f"# HELP {name} {_escape_help(_HELP[name])}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)

        family(TTFA, "histogram", ttfa)
        family(RTF, "histogram", rtf)
        family(REQUESTS, "counter", [f'{REQUESTS}{{status="{escape_label_value(status)}"}} {count}'
                                     for status, count in requests])
        for name in (AUDIO_SECONDS, S3GEN_CALLS, STALLS, STALL_SECONDS):
            family(name, "counter", [f"{name} {format_value(counters[name])}"])
        for name in GAUGE_NAMES:
            family(name, "gauge", [f"{name} {format_value(gauges[name])}"])
        return "\n".join(lines) + "\n"


class PlaybackTracker:
    """One stream's playback as its client hears it, on the wall clock.

    The client starts playing when the first chunk arrives and plays continuously;
    when it runs out before the next chunk arrives, it waits (a stall) and resumes
    with that chunk. Chunks without audio change nothing. Times are seconds on any
    clock that does not go back (``time.monotonic()``).
    """

    def __init__(self, *, tolerance: float = 1e-9) -> None:
        #: A wait of at most this many seconds is not a stall (float rounding).
        self.tolerance = tolerance
        #: When the first audio arrived (``None``: none yet).
        self.first_audio_at: float | None = None
        #: When the client's audio runs out, if nothing more arrives (``None``: none yet).
        self.audio_end: float | None = None
        #: Stalls so far, and the seconds waited in them.
        self.stalls = 0
        self.stall_seconds = 0.0
        #: Seconds of audio received.
        self.audio_seconds = 0.0
        self._last: float | None = None

    def chunk(self, now: float, audio_seconds: float) -> float:
        """A chunk of ``audio_seconds`` arrived at ``now``; the stall it ended (0 if the
        client still had audio to play)."""
        if audio_seconds < 0 or not math.isfinite(audio_seconds):
            raise ValueError(f"audio_seconds must be a finite number of at least 0, not {audio_seconds!r}")
        if self._last is not None and now < self._last:
            raise ValueError(f"time went back: a chunk at {now!r} after one at {self._last!r}")
        self._last = now
        if audio_seconds == 0:
            return 0.0
        self.audio_seconds += audio_seconds
        if self.audio_end is None:
            self.first_audio_at = now
            self.audio_end = now + audio_seconds
            return 0.0
        stall = now - self.audio_end
        if stall > self.tolerance:
            self.stalls += 1
            self.stall_seconds += stall
            self.audio_end = now
        else:
            stall = 0.0
        self.audio_end += audio_seconds
        return stall

    def buffered_seconds(self, now: float) -> float:
        """Seconds of audio the client has left to play at ``now`` (0 before the first chunk)."""
        if self.audio_end is None:
            return 0.0
        return max(0.0, self.audio_end - now)


__all__ = ["CONTENT_TYPE", "GAUGE_NAMES", "RTF_BUCKETS", "TTFA_BUCKETS", "Histogram", "PlaybackTracker",
           "ServerMetrics", "escape_label_value", "format_value"]
