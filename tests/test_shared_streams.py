"""Several streams on one pipeline, as a server runs them: their streamed segments are
rows of one shared batch, model work goes earliest deadline first, and a closed
stream's rows leave the batch at once (sine engine; the real model in
tests/test_shared_streams_chatterbox.py).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import sine_engine
from seqopt_core import PluginHost
from seqopt_core.deadline_gate import DeadlineGate
from seqopt_core.scheduler import SchedulerSnapshot
from test_scheduler import RAMP_TEXT, TEXT, Recorder, audio_of, sine_pipeline

#: A first segment long enough to still be generating when the other stream's joins.
LONG_FIRST = ("One two three four five six seven eight nine ten eleven twelve thirteen fourteen. "
              "Then a short one.")
#: Texts whose first segments are long enough for eight streams to overlap.
TEXTS = [LONG_FIRST, LONG_FIRST + " " + TEXT, LONG_FIRST + " " + RAMP_TEXT,
         "Only one sentence here, a longer one than most of the others are."]


@pytest.fixture(scope="module")
def host() -> PluginHost:
    host = PluginHost.discover()
    host.register(sine_engine, name="sine_engine")
    return host


def alone(host, text: str, seed: int, **synthesis) -> np.ndarray:
    return audio_of(sine_pipeline(host, **synthesis).stream(text, seed=seed))


# -- the gate ---------------------------------------------------------------------------------


def test_the_gate_lets_the_earliest_deadline_through_first():
    gate = DeadlineGate()
    order: list[float] = []
    started = threading.Barrier(4)

    def ask(deadline: float) -> None:
        started.wait()
        with gate.hold(deadline):
            order.append(deadline)

    with gate.hold(0.0):  # held while three threads line up behind it
        threads = [threading.Thread(target=ask, args=(d,)) for d in (3.0, 1.0, 2.0)]
        for t in threads:
            t.start()
        started.wait()
        while gate.waiting < 3:
            time.sleep(0.001)
    for t in threads:
        t.join()
    assert order == [1.0, 2.0, 3.0]


def test_the_gate_is_reentrant_and_ties_go_first_come():
    gate = DeadlineGate()
    with gate.hold(5.0), gate.hold(1.0):  # the holder passes straight through
        pass
    order: list[str] = []
    threads = []

    def ask(name: str) -> None:
        with gate.hold(7.0):
            order.append(name)

    with gate.hold(0.0):
        for name in "abc":  # each lines up before the next asks
            t = threading.Thread(target=ask, args=(name,))
            t.start()
            threads.append(t)
            while gate.waiting < len(threads):
                time.sleep(0.001)
    for t in threads:
        t.join()
    assert order == ["a", "b", "c"]


# -- rows of several streams share the steps --------------------------------------------------


def test_streamed_segments_of_two_streams_share_one_batch(host, monkeypatch):
    pipeline = sine_pipeline(host, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    a, b = pipeline.stream(LONG_FIRST, seed=1), pipeline.stream(LONG_FIRST, seed=2)
    first_a, first_b = next(a), next(b)  # each stream's first chunk: its first segment streams
    assert first_a.segment.index == 0 and first_b.segment.index == 0
    assert pipeline.scheduler.snapshot().rows == 2
    both = [s for s in rec.steps if len({stream for stream, _ in s.ran}) == 2]
    assert both and all(index == 0 for s in both for _, index in s.ran), \
        "no step ran the streamed first segments of both streams"
    chunks_a, chunks_b = [first_a, *a], [first_b, *b]
    assert np.array_equal(np.concatenate([c.audio for c in chunks_a]), alone(host, LONG_FIRST, 1, batch_size=4))
    assert np.array_equal(np.concatenate([c.audio for c in chunks_b]), alone(host, LONG_FIRST, 2, batch_size=4))
    assert pipeline.scheduler.snapshot() == SchedulerSnapshot(0, 0, 0)


def test_eight_concurrent_streams_each_get_their_audio_alone(host, monkeypatch):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.003}, batch_size=8)
    rec = Recorder(pipeline.engine, monkeypatch)
    jobs = [(TEXTS[i % len(TEXTS)], 100 + i) for i in range(8)]
    out: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(len(jobs))

    def run(i: int, text: str, seed: int) -> None:
        stream = pipeline.stream(text, seed=seed)
        barrier.wait()
        out[i] = audio_of(stream)

    threads = [threading.Thread(target=run, args=(i, t, s)) for i, (t, s) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (text, seed) in enumerate(jobs):
        assert np.array_equal(out[i], alone(host, text, seed, batch_size=8)), f"stream {i} differs"
    widest = max(len({stream for stream, _ in s.ran}) for s in rec.steps)
    assert widest >= 4, f"no step ran the rows of more than {widest} streams"
    assert pipeline.scheduler.snapshot() == SchedulerSnapshot(0, 0, 0)


def test_model_work_is_asked_for_with_each_streams_playback_deadline(host, monkeypatch):
    """Four streams that play far ahead of their listeners (each is read as fast as it
    comes) ask for the model with deadlines in the future; a new stream asks with the
    moment it arrived, so the gate (earliest first, tested above) serves it before them."""
    pipeline = sine_pipeline(host, {"decode_sleep_seconds": 0.005}, batch_size=8)
    scheduler = pipeline.scheduler
    asked: list[tuple[str, str, float, float]] = []  # (thread, stage, deadline, asked at)
    hold = scheduler._hold

    def recorded(stage, deadline):
        asked.append((threading.current_thread().name, stage, deadline, time.perf_counter()))
        return hold(stage, deadline)

    monkeypatch.setattr(scheduler, "_hold", recorded)
    long_text = " ".join([RAMP_TEXT] * 4)
    playing = threading.Barrier(5)
    done = threading.Event()
    arrived: list[float] = []

    def greedy(seed: int) -> None:
        stream = pipeline.stream(long_text, seed=seed)
        for n, _ in enumerate(stream):
            if n == 2:
                playing.wait()
            if done.is_set():
                break
        stream.close()

    def newcomer() -> None:
        playing.wait()
        arrived.append(time.perf_counter())
        for _ in pipeline.stream(TEXT, seed=4):
            break
        done.set()

    threads = [threading.Thread(target=greedy, args=(seed,), name=f"a{seed}") for seed in range(4)]
    threads.append(threading.Thread(target=newcomer, name="b"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    b_asks = [(deadline, at) for name, _, deadline, at in asked if name == "b"]
    assert b_asks and all(deadline <= at for deadline, at in b_asks)  # due already: nothing played
    assert all(abs(deadline - b_asks[0][0]) < 1e-9 for deadline, _ in b_asks)  # its arrival
    a_asks = [(deadline, at) for name, _, deadline, at in asked if name.startswith("a") and arrived[0] <= at]
    assert a_asks, "no playing stream asked for the model after the new one arrived"
    assert all(deadline > at for deadline, at in a_asks), "a playing stream asked as if it were due"
    assert min(deadline for deadline, _ in a_asks) > max(deadline for deadline, _ in b_asks)


# -- a closed stream leaves the batch at once ----------------------------------------------


def test_closing_a_stream_drops_its_rows_and_the_other_goes_on(host, monkeypatch):
    long_text = " ".join([LONG_FIRST] * 2)
    pipeline = sine_pipeline(host, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    a, b = pipeline.stream(LONG_FIRST, seed=5), pipeline.stream(long_text, seed=6)
    next(a)
    chunks_b = [next(b)]
    assert pipeline.scheduler.snapshot().rows == 2
    a.close()
    assert pipeline.scheduler.snapshot().rows == 1  # freed now, not when its row would have ended
    assert rec.batches[0].dropped, "the closed stream's row was not dropped"
    chunks_b += list(b)
    assert np.array_equal(np.concatenate([c.audio for c in chunks_b]), alone(host, long_text, 6, batch_size=4))
    assert pipeline.scheduler.snapshot().rows == 0


def test_out_of_memory_with_streamed_rows_loses_no_audio(host, monkeypatch):
    pipeline = sine_pipeline(host, {"oom_above_rows": 1}, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    a, b = pipeline.stream(LONG_FIRST, seed=7), pipeline.stream(TEXT, seed=8)
    chunks_a, chunks_b = [next(a)], [next(b)]  # the second row does not fit: the batch halves
    assert [s.error for s in rec.steps if s.error] == ["MemoryError"]
    chunks_a += list(a)
    chunks_b += list(b)
    assert np.array_equal(np.concatenate([c.audio for c in chunks_a]), alone(host, LONG_FIRST, 7, batch_size=4))
    assert np.array_equal(np.concatenate([c.audio for c in chunks_b]), alone(host, TEXT, 8, batch_size=4))


def test_a_stream_stopped_from_another_thread_leaves_the_batch_at_once(host, monkeypatch):
    """A server stops a stream whose client went away from another thread, while the
    stream's own thread is inside a long chunk: its row leaves the shared batch at the
    next step (not when the chunk is done), that thread gets no further chunk, and the
    other stream goes on with its audio alone."""
    one_chunk = {"chunk_policy": {"name": "fixed", "options": {"chunk_size": 1000}}}  # a segment's tokens
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.02}, overrides=one_chunk, batch_size=4)
    rec = Recorder(pipeline.engine, monkeypatch)
    # one sentence, one segment: about 90 steps (2 s) before its one chunk is ready
    long_text = LONG_FIRST.replace(". Then", ", then").replace(".", ", " + LONG_FIRST.split(".")[0].lower() + ".")
    assert len(pipeline.planner.plan(long_text).segments) == 1
    a, b = pipeline.stream(long_text, seed=3), pipeline.stream(LONG_FIRST, seed=4)
    got_a: list = []
    out_b: dict[str, np.ndarray] = {}
    thread_a = threading.Thread(target=lambda: got_a.extend(a))
    thread_b = threading.Thread(target=lambda: out_b.setdefault("audio", audio_of(b)))
    thread_a.start()
    thread_b.start()
    deadline = time.monotonic() + 60
    while pipeline.scheduler.snapshot().rows < 2:
        assert time.monotonic() < deadline, "the two streams never shared the batch"
        time.sleep(0.002)
    steps_at_stop = len(rec.steps)
    a.stop()
    thread_a.join(timeout=60)
    assert not thread_a.is_alive()
    assert got_a == [], "a chunk was handed out after the stream was stopped"
    assert rec.batches[0].dropped, "the stopped stream's row was not dropped"
    both = [s for s in rec.steps[steps_at_stop:] if len(s.ran) == 2]
    assert len(both) < 5, f"the stopped row stayed for {len(both)} more steps"
    assert a.stopped and a.metrics is not None and not a.metrics.generation.completed
    thread_b.join(timeout=60)
    assert np.array_equal(out_b["audio"], alone(host, LONG_FIRST, 4, batch_size=4, overrides=one_chunk))
    assert pipeline.scheduler.snapshot() == SchedulerSnapshot(0, 0, 0)
