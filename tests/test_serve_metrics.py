"""``GET /metrics`` of ``seqopt serve`` (seqopt_core/server/metrics.py): the exposition is
read back with prometheus_client's parser (a dev-only tool) and checked line by line
against the text format; the playback stall model is checked exactly."""

from __future__ import annotations

import doctest
import math
import re
import threading

import pytest

from seqopt_core.server import metrics as metrics_module
from seqopt_core.server.metrics import (
    CONTENT_TYPE,
    GAUGE_NAMES,
    RTF_BUCKETS,
    TTFA_BUCKETS,
    Histogram,
    PlaybackTracker,
    ServerMetrics,
    escape_label_value,
    format_value,
)

EXPECTED_TYPES = {
    "seqopt_time_to_first_audio_seconds": "histogram",
    "seqopt_real_time_factor": "histogram",
    "seqopt_requests": "counter",               # the parser drops a counter's _total
    "seqopt_audio_seconds": "counter",
    "seqopt_s3gen_calls": "counter",
    "seqopt_playback_stalls": "counter",
    "seqopt_playback_stall_seconds": "counter",
    "seqopt_active_streams": "gauge",
    "seqopt_queued_requests": "gauge",
    "seqopt_t3_batch_rows": "gauge",
}

# One line of the 0.0.4 text format: a comment, or name{labels} value.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|\+Inf|-Inf|NaN)"
_SAMPLE = re.compile(rf"^{_NAME}(?:\{{{_LABEL}(?:,{_LABEL})*\}})? {_VALUE}$")
_COMMENT = re.compile(rf"^# (?:HELP {_NAME} .*|TYPE {_NAME} (?:counter|gauge|histogram|summary|untyped))$")


def _families(text: str) -> dict:
    """The exposition read by prometheus_client's parser (the dev extra brings it)."""
    parser = pytest.importorskip("prometheus_client.parser", reason="needs prometheus-client (the dev extra)")
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def _samples(family) -> dict:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value for sample in family.samples}


def _check_format(text: str) -> None:
    assert text.endswith("\n") and not text.endswith("\n\n")
    for line in text.rstrip("\n").split("\n"):
        assert _COMMENT.match(line) or _SAMPLE.match(line), f"not exposition format: {line!r}"


def _buckets(family) -> list[tuple[float, float]]:
    return [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]


def test_a_fresh_exposition_has_every_metric_with_help_and_type():
    text = ServerMetrics().render()
    _check_format(text)
    families = _families(text)
    assert {name: family.type for name, family in families.items()} == EXPECTED_TYPES
    assert all(family.documentation for family in families.values())
    for name in ("seqopt_time_to_first_audio_seconds", "seqopt_real_time_factor"):
        assert [value for _le, value in _buckets(families[name])] == [0] * len(_buckets(families[name]))
    assert _samples(families["seqopt_requests"]) == {("seqopt_requests_total", (("status", "200"),)): 0}
    for name in GAUGE_NAMES:
        assert _samples(families[name]) == {(name, ()): 0}
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_the_buckets_span_cpu_and_gpu():
    assert TTFA_BUCKETS[0] == 0.05 and TTFA_BUCKETS[-1] == 120
    assert RTF_BUCKETS[0] == 0.05 and RTF_BUCKETS[-1] == 20 and 1.0 in RTF_BUCKETS
    families = _families(ServerMetrics().render())
    les = [le for le, _ in _buckets(families["seqopt_time_to_first_audio_seconds"])]
    assert les == [*TTFA_BUCKETS, math.inf]
    les = [le for le, _ in _buckets(families["seqopt_real_time_factor"])]
    assert les == [*RTF_BUCKETS, math.inf]


def test_histograms_count_cumulatively_with_sum_and_count():
    metrics = ServerMetrics()
    ttfas = [0.04, 0.05, 0.051, 0.8, 0.8, 119.0, 500.0]  # 0.05 is in le="0.05"; 500 only in +Inf
    rtfs = [0.5, 1.0, 2.5, 25.0]
    for index, ttfa in enumerate(ttfas):
        metrics.stream_started()
        metrics.stream_finished(ttfa=ttfa, rtf=rtfs[index] if index < len(rtfs) else None)
    text = metrics.render()
    _check_format(text)
    families = _families(text)

    ttfa = dict(_buckets(families["seqopt_time_to_first_audio_seconds"]))
    assert ttfa[0.05] == 2 and ttfa[0.1] == 3 and ttfa[0.75] == 3 and ttfa[1.0] == 5
    assert ttfa[60.0] == 5 and ttfa[120.0] == 6 and ttfa[math.inf] == 7
    samples = _samples(families["seqopt_time_to_first_audio_seconds"])
    assert samples[("seqopt_time_to_first_audio_seconds_count", ())] == 7
    assert samples[("seqopt_time_to_first_audio_seconds_sum", ())] == pytest.approx(sum(ttfas))

    rtf = dict(_buckets(families["seqopt_real_time_factor"]))
    assert rtf[0.3] == 0 and rtf[0.5] == 1 and rtf[1.0] == 2 and rtf[2.0] == 2 and rtf[3.0] == 3
    assert rtf[20.0] == 3 and rtf[math.inf] == 4
    samples = _samples(families["seqopt_real_time_factor"])
    assert samples[("seqopt_real_time_factor_count", ())] == 4
    assert samples[("seqopt_real_time_factor_sum", ())] == pytest.approx(29.0)
    values = [value for _le, value in _buckets(families["seqopt_real_time_factor"])]
    assert values == sorted(values)


def test_counters_add_up_what_streams_report():
    metrics = ServerMetrics()
    metrics.stream_started()
    metrics.stream_started()
    metrics.stream_finished(0.4, 0.5, audio_seconds=12.5, s3gen_calls=9, stalls=2, stall_seconds=0.75)
    metrics.stream_finished(0.6, 0.7, audio_seconds=3.25, s3gen_calls=2, stalls=0, stall_seconds=0.0)
    for status in (200, 200, 400, "503"):
        metrics.request_finished(status)
    families = _families(metrics.render())
    assert _samples(families["seqopt_audio_seconds"]) == {("seqopt_audio_seconds_total", ()): 15.75}
    assert _samples(families["seqopt_s3gen_calls"]) == {("seqopt_s3gen_calls_total", ()): 11}
    assert _samples(families["seqopt_playback_stalls"]) == {("seqopt_playback_stalls_total", ()): 2}
    assert _samples(families["seqopt_playback_stall_seconds"]) == {
        ("seqopt_playback_stall_seconds_total", ()): 0.75}
    assert _samples(families["seqopt_requests"]) == {
        ("seqopt_requests_total", (("status", "200"),)): 2,
        ("seqopt_requests_total", (("status", "400"),)): 1,
        ("seqopt_requests_total", (("status", "503"),)): 1,
    }


def test_a_stream_without_audio_observes_no_ttfa_or_rtf():
    metrics = ServerMetrics()
    metrics.stream_started()
    metrics.stream_finished(ttfa=None, rtf=math.inf)  # the client left before any audio
    families = _families(metrics.render())
    assert _samples(families["seqopt_time_to_first_audio_seconds"])[
        ("seqopt_time_to_first_audio_seconds_count", ())] == 0
    assert _samples(families["seqopt_real_time_factor"])[("seqopt_real_time_factor_count", ())] == 0
    assert _samples(families["seqopt_active_streams"]) == {("seqopt_active_streams", ()): 0}


@pytest.mark.parametrize("field", ["ttfa", "rtf", "audio_seconds", "s3gen_calls", "stalls", "stall_seconds"])
def test_negative_or_nan_observations_are_refused(field):
    metrics = ServerMetrics()
    values = {"ttfa": 0.1, "rtf": 0.5, "audio_seconds": 1.0, "s3gen_calls": 1, "stalls": 0, "stall_seconds": 0.0}
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match=field):
            metrics.stream_finished(**{**values, field: bad})
    assert "seqopt_audio_seconds_total 0\n" in metrics.render()  # nothing half-recorded


def test_gauges_follow_streams_and_the_queue():
    metrics = ServerMetrics()
    for _ in range(3):
        metrics.stream_started()
    metrics.stream_finished(0.1, 0.2)
    for _ in range(4):
        metrics.request_queued()
    metrics.request_left_queue()
    families = _families(metrics.render())
    assert _samples(families["seqopt_active_streams"]) == {("seqopt_active_streams", ()): 2}
    assert _samples(families["seqopt_queued_requests"]) == {("seqopt_queued_requests", ()): 3}
    for _ in range(5):
        metrics.request_left_queue()  # never below zero
    assert "seqopt_queued_requests 0\n" in metrics.render()


def test_gauges_from_callbacks_and_values():
    rows = [4]
    metrics = ServerMetrics(gauges={"seqopt_t3_batch_rows": lambda: rows[0]})
    assert "seqopt_t3_batch_rows 4\n" in metrics.render()
    rows[0] = 16
    assert "seqopt_t3_batch_rows 16\n" in metrics.render()  # read at each render
    metrics.watch_gauge("seqopt_active_streams", lambda: 2.5)
    metrics.stream_started()
    assert "seqopt_active_streams 2.5\n" in metrics.render()  # the callback wins
    metrics.set_gauge("seqopt_t3_batch_rows", 3)
    rows[0] = 99
    assert "seqopt_t3_batch_rows 3\n" in metrics.render()


def test_a_failing_gauge_callback_shows_nan_and_does_not_break_metrics():
    def broken() -> float:
        raise RuntimeError("scheduler gone")

    metrics = ServerMetrics(gauges={"seqopt_t3_batch_rows": broken})
    text = metrics.render()
    _check_format(text)
    assert math.isnan(_samples(_families(text)["seqopt_t3_batch_rows"])[("seqopt_t3_batch_rows", ())])


def test_unknown_gauges_are_refused_with_the_known_names():
    with pytest.raises(ValueError, match="seqopt_t3_batch_rows"):
        ServerMetrics(gauges={"seqopt_t3_rows": lambda: 1})
    with pytest.raises(ValueError, match="unknown gauge 'x'"):
        ServerMetrics().set_gauge("x", 1)
    with pytest.raises(TypeError, match="callable"):
        ServerMetrics().watch_gauge("seqopt_t3_batch_rows", 3)  # type: ignore[arg-type]


def test_label_values_are_escaped():
    metrics = ServerMetrics()
    odd = 'a"b\\c\nd'
    metrics.request_finished(odd)
    text = metrics.render()
    _check_format(text)
    assert 'seqopt_requests_total{status="a\\"b\\\\c\\nd"} 1' in text
    labels = [s.labels["status"] for s in _families(text)["seqopt_requests"].samples]
    assert odd in labels
    assert escape_label_value("plain") == "plain"


def test_values_are_written_as_the_format_wants():
    assert [format_value(v) for v in (0, 2.0, 0.75, -1.5, math.inf, -math.inf, math.nan, 1e20)] == \
        ["0", "2", "0.75", "-1.5", "+Inf", "-Inf", "NaN", "1e+20"]


def test_histogram_bounds_must_increase():
    for bad in ((), (1.0, 1.0), (2.0, 1.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match="strictly increasing"):
            Histogram(bad)


def test_concurrent_updates_are_all_counted():
    metrics = ServerMetrics()

    def worker() -> None:
        for _ in range(500):
            metrics.stream_started()
            metrics.stream_finished(0.2, 0.5, audio_seconds=1.0, s3gen_calls=1)
            metrics.request_finished(200)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    families = _families(metrics.render())
    assert _samples(families["seqopt_requests"])[("seqopt_requests_total", (("status", "200"),))] == 4000
    assert _samples(families["seqopt_s3gen_calls"]) == {("seqopt_s3gen_calls_total", ()): 4000}
    assert _samples(families["seqopt_time_to_first_audio_seconds"])[
        ("seqopt_time_to_first_audio_seconds_count", ())] == 4000
    assert _samples(families["seqopt_active_streams"]) == {("seqopt_active_streams", ()): 0}


def test_the_module_doc_examples_run():
    result = doctest.testmod(metrics_module)
    assert result.attempted > 0 and result.failed == 0


# --- PlaybackTracker ---------------------------------------------------------------------

def test_no_stall_when_each_chunk_comes_before_the_audio_runs_out():
    tracker = PlaybackTracker()
    assert tracker.first_audio_at is None and tracker.buffered_seconds(0.0) == 0.0
    assert tracker.chunk(10.0, 1.0) == 0.0      # plays 10 .. 11
    assert tracker.chunk(10.5, 1.0) == 0.0      # plays to 12
    assert tracker.chunk(12.0, 0.5) == 0.0      # exactly when it ran out: no wait
    assert (tracker.stalls, tracker.stall_seconds, tracker.first_audio_at) == (0, 0.0, 10.0)
    assert tracker.audio_end == 12.5 and tracker.audio_seconds == 2.5
    assert tracker.buffered_seconds(12.25) == 0.25


def test_one_stall_of_known_length():
    tracker = PlaybackTracker()
    tracker.chunk(0.25, 0.5)                    # plays 0.25 .. 0.75
    assert tracker.chunk(1.0, 2.0) == 0.25      # waited 0.75 .. 1.0, then plays 1.0 .. 3.0
    assert (tracker.stalls, tracker.stall_seconds) == (1, 0.25)
    assert tracker.audio_end == 3.0
    assert tracker.chunk(2.0, 1.0) == 0.0       # the stall did not carry over
    assert tracker.audio_end == 4.0


def test_several_stalls_add_up():
    tracker = PlaybackTracker()
    arrivals = [(0.0, 0.5), (1.0, 0.5), (1.25, 0.25), (2.5, 1.0), (3.0, 0.5), (5.0, 0.5)]
    stalls = [tracker.chunk(now, seconds) for now, seconds in arrivals]
    # plays 0-0.5; waits 0.5; 1.0-1.5 then 1.5-1.75; waits 0.75; 2.5-3.5, 3.5-4.0; waits 1.0
    assert stalls == [0.0, 0.5, 0.0, 0.75, 0.0, 1.0]
    assert tracker.stalls == 3 and tracker.stall_seconds == 2.25
    assert tracker.first_audio_at == 0.0 and tracker.audio_end == 5.5


def test_chunks_without_audio_change_nothing():
    tracker = PlaybackTracker()
    assert tracker.chunk(1.0, 0.0) == 0.0       # no audio yet: playback has not started
    assert tracker.first_audio_at is None
    tracker.chunk(2.0, 0.5)
    assert tracker.chunk(4.0, 0.0) == 0.0       # nothing to play still: the wait goes on
    assert tracker.chunk(5.0, 0.5) == 2.5       # one stall, counted once
    assert (tracker.stalls, tracker.stall_seconds, tracker.first_audio_at) == (1, 2.5, 2.0)


def test_float_noise_is_not_a_stall():
    tracker = PlaybackTracker()
    now = 0.0
    for _ in range(1000):
        tracker.chunk(now, 0.1)
        now += 0.1                              # arrives as the last one ends, with rounding
    assert tracker.stalls == 0 and tracker.stall_seconds == 0.0


def test_bad_chunks_are_refused():
    tracker = PlaybackTracker()
    tracker.chunk(5.0, 1.0)
    with pytest.raises(ValueError, match="time went back"):
        tracker.chunk(4.0, 1.0)
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="audio_seconds"):
            tracker.chunk(6.0, bad)
