"""`seqopt serve` under load and faults, on the sine engine: concurrent requests each get
the audio they get alone, admission control (active streams, a bounded FIFO queue, 503 +
Retry-After), a client that disconnects frees its slot and the scheduler, a failing
request ends only itself, an out-of-memory batch loses no request's audio, and a
graceful shutdown finishes or cleanly ends active streams.
"""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import sine_engine
from seqopt_core import Pipeline
from serve_support import LONG_TEXT, TEXT, alone_pcm, serve, sine_host, sine_pipeline, wait_until

#: Mixed lengths: one segment up to several.
TEXTS = [
    "Hello there.",
    TEXT,
    "A short one. And a second sentence, a little longer than the first.",
    "One more text: it has a clause; then another clause, and it ends here.",
    TEXT + "\n\nAnd a paragraph more, to make it the longest of them all.",
    "Numbers like 42 and 7 are read too.",
    "Tiny.",
    "The last of the eight texts is of middling length, with two sentences. Here is the second.",
]
#: A first segment that streams, then one that fails after audio went out (fail_after_steps=8).
FAILS_MIDWAY = "Hi.\n\nSupercalifragilisticexpialidocious"


@pytest.fixture(scope="module")
def host():
    return sine_host()


def post(url: str, body: dict, timeout: float = 120) -> httpx.Response:
    with httpx.Client(timeout=timeout) as client:
        return client.post(url + "/v1/audio/speech", json={"response_format": "pcm", **body})


def snapshot_empty(pipeline) -> bool:
    snap = pipeline.scheduler.snapshot()
    return (snap.streams, snap.rows, snap.queued) == (0, 0, 0)


class OpenStream:
    """A speech request whose response is held open (not read past its first bytes) in a
    thread until :meth:`close`, which disconnects."""

    def __init__(self, url: str, body: dict) -> None:
        self.status: int | None = None
        self.first = threading.Event()
        self._close = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(url, body), daemon=True)
        self.thread.start()

    def _run(self, url: str, body: dict) -> None:
        try:
            with httpx.Client(timeout=120) as client:
                with client.stream("POST", url + "/v1/audio/speech",
                                   json={"response_format": "pcm", **body}) as response:
                    self.status = response.status_code
                    if response.status_code == 200:
                        chunks = response.iter_raw()  # kept: a dropped iterator closes the response
                        next(chunks)
                    else:
                        response.read()
                    self.first.set()
                    self._close.wait(120)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.first.set()

    def close(self) -> None:
        self._close.set()
        self.thread.join(60)


def test_eight_concurrent_requests_each_get_their_alone_audio(host):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.002})
    expected = [alone_pcm(pipeline, text, seed=11) for text in TEXTS]
    with serve(pipeline, max_streams=8) as live:
        with ThreadPoolExecutor(len(TEXTS)) as pool:
            responses = list(pool.map(lambda text: post(live.url, {"input": text, "seed": 11}), TEXTS))
        assert [r.status_code for r in responses] == [200] * len(TEXTS)
        for text, response, audio in zip(TEXTS, responses, expected):
            assert response.content == audio, text
        assert live.service.admission.active == 0
    assert snapshot_empty(pipeline)


def test_beyond_the_active_streams_and_the_queue_a_request_gets_503_with_retry_after(host):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.01})
    with serve(pipeline, max_streams=2, max_queue=1, retry_after_seconds=3) as live:
        admission = live.service.admission
        active = [OpenStream(live.url, {"input": LONG_TEXT}) for _ in range(2)]
        for stream in active:
            assert stream.first.wait(120) and stream.status == 200
        queued = OpenStream(live.url, {"input": "Hello there."})
        wait_until(lambda: admission.queued == 1, "the third request waits in the queue")
        fourth = post(live.url, {"input": "Hello there."})
        assert fourth.status_code == 503 and fourth.headers["retry-after"] == "3"
        error = fourth.json()["error"]
        assert error["type"] == "server_overloaded" and "busy" in error["message"]
        health = httpx.get(live.url + "/health").json()
        assert (health["active"], health["queued"]) == (2, 1)
        active[0].close()  # its slot goes to the queued request
        assert queued.first.wait(120) and queued.status == 200
        for stream in (active[1], queued):
            stream.close()
        wait_until(lambda: admission.active == 0, "every slot is free again")
        assert all(s.error is None for s in (*active, queued))
    wait_until(lambda: snapshot_empty(pipeline), "the scheduler holds nothing")


def test_a_client_that_disconnects_mid_stream_frees_its_slot_and_the_scheduler(host):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.01})
    with serve(pipeline, max_streams=1, max_queue=0) as live:
        admission = live.service.admission
        stream = OpenStream(live.url, {"input": LONG_TEXT})
        assert stream.first.wait(120) and stream.status == 200
        assert admission.active == 1 and not snapshot_empty(pipeline)
        stream.close()
        wait_until(lambda: admission.active == 0 and snapshot_empty(pipeline),
                   "the slot and the scheduler are free")
        ended = pipeline.last_metrics.generation
        assert not ended.completed  # stopped early, not run to its end
        metrics = httpx.get(live.url + "/metrics").text
        assert "seqopt_active_streams 0" in metrics and "seqopt_t3_batch_rows 0" in metrics
        # The one slot serves the next request at once, with the right audio.
        again = post(live.url, {"input": TEXT, "seed": 2})
        assert again.status_code == 200 and again.content == alone_pcm(pipeline, TEXT, seed=2)


def test_a_client_that_disconnects_while_its_next_segment_generates_leaves_the_batch_at_once(
        host, monkeypatch):
    """The request's thread is inside the scheduler, stepping its second segment (one
    chunk of about 90 steps): the disconnect stops the stream from the event loop, and
    the row is dropped at the next step instead of running to its end."""
    pipeline = Pipeline.from_config(host=host, overrides={
        "engine": {"name": "sine", "options": {"step_sleep_seconds": 0.02}},
        "estimator": {"name": "ratio"}, "planner": {"target_tokens": 4, "max_tokens": 128},
        "chunk_policy": {"name": "fixed", "options": {"chunk_size": 1000}},
        "synthesis": {"seed": 7, "batch_size": 4}})
    opened = []
    open_batch = pipeline.engine.open_batch
    monkeypatch.setattr(pipeline.engine, "open_batch",
                        lambda attention=None: opened.append(open_batch(attention)) or opened[-1])
    long_sentence = "One" + ", ".join(["one two three four five six seven eight nine ten"] * 3)[3:] + "."
    assert len(pipeline.planner.plan("Hi. " + long_sentence).segments) == 2
    with serve(pipeline, max_streams=1, max_queue=0) as live:
        stream = OpenStream(live.url, {"input": "Hi. " + long_sentence})
        assert stream.first.wait(120) and stream.status == 200  # the first segment's audio
        wait_until(lambda: pipeline.scheduler.snapshot().rows == 1, "the second segment generates")
        stream.close()
        wait_until(lambda: live.service.admission.active == 0 and snapshot_empty(pipeline),
                   "the slot and the scheduler are free")
    assert any(batch.dropped for batch in opened), "the row ran to its end instead of leaving at once"
    assert not pipeline.last_metrics.generation.completed


def test_a_queued_client_that_leaves_gives_up_its_place(host):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.01})
    with serve(pipeline, max_streams=1, max_queue=1) as live:
        admission = live.service.admission
        active = OpenStream(live.url, {"input": LONG_TEXT})
        assert active.first.wait(120) and active.status == 200
        gone: list[BaseException] = []

        def impatient() -> None:  # waits in the queue, gives up, closes its connection
            with httpx.Client(timeout=httpx.Timeout(120, read=0.5)) as client:
                try:
                    client.post(live.url + "/v1/audio/speech", json={"input": "Bye.", "response_format": "pcm"})
                except httpx.ReadTimeout as exc:
                    gone.append(exc)

        leaving = threading.Thread(target=impatient)
        leaving.start()
        wait_until(lambda: admission.queued == 1, "the second request is queued")
        leaving.join(60)
        assert gone, "the impatient request was answered instead of waiting in the queue"
        wait_until(lambda: admission.queued == 0, "the request that left is out of the queue")
        assert admission.active == 1  # the stream that runs is untouched
        waiting = OpenStream(live.url, {"input": "Hello."})  # the freed place is usable
        wait_until(lambda: admission.queued == 1, "a new request takes the place")
        active.close()
        assert waiting.first.wait(120) and waiting.status == 200
        waiting.close()
        wait_until(lambda: admission.active == 0, "every slot is free")


def test_a_failing_request_ends_only_itself(host):
    good = sine_pipeline(host, {"step_sleep_seconds": 0.002})
    pipelines = {"good": good, "broken": sine_pipeline(host, {"fail_after_steps": 0}),
                 "midway": sine_pipeline(host, {"fail_after_steps": 8})}
    expected = alone_pcm(good, TEXT, seed=5)
    with serve(pipelines, "good") as live:
        requests = [{"input": TEXT, "seed": 5, "model": "good"},
                    {"input": "Hello there.", "model": "broken"},
                    {"input": FAILS_MIDWAY, "model": "midway", "stream_format": "sse"},
                    {"input": TEXT, "seed": 5, "model": "good"}]
        with ThreadPoolExecutor(len(requests)) as pool:
            responses = list(pool.map(lambda body: post(live.url, body), requests))
        assert responses[0].status_code == 200 and responses[0].content == expected
        assert responses[3].status_code == 200 and responses[3].content == expected
        # Failed before any audio: an ordinary error, naming the segment.
        broken = responses[1]
        assert broken.status_code == 500 and "Hello there." in broken.json()["error"]["message"]
        assert "Traceback" not in broken.text
        # Failed after audio went out (sse): audio deltas, then an error event.
        events = [json.loads(b[len("data: "):]) for b in responses[2].text.split("\n\n") if b]
        assert responses[2].status_code == 200
        assert events[0]["type"] == "speech.audio.delta" and base64.b64decode(events[0]["audio"])
        assert events[-1]["type"] == "error" and "Supercalifragilisticexpialidocious" in events[-1]["error"]["message"]
        # The same (audio): the body is cut short, so the client sees an incomplete response.
        with pytest.raises(httpx.RemoteProtocolError):
            post(live.url, {"input": FAILS_MIDWAY, "model": "midway"})
        assert httpx.get(live.url + "/health").json()["status"] == "ok"
        assert post(live.url, {"input": TEXT, "seed": 5}).content == expected
        wait_until(lambda: live.service.admission.active == 0, "every slot is free")


def test_out_of_memory_during_concurrent_requests_loses_no_audio(host, monkeypatch):
    pipeline = sine_pipeline(host, {"oom_above_rows": 2, "step_sleep_seconds": 0.002}, batch_size=4)
    texts = [TEXT, TEXT + " One more sentence here.", TEXTS[4], TEXTS[7]]
    expected = [alone_pcm(pipeline, text, seed=9) for text in texts]
    out_of_memory = []
    step = sine_engine.SineBatch.step

    def counted(self, joining=()):
        try:
            return step(self, joining)
        except MemoryError:
            out_of_memory.append(self.rows + len(joining))
            raise

    monkeypatch.setattr(sine_engine.SineBatch, "step", counted)
    with serve(pipeline, max_streams=4) as live:
        with ThreadPoolExecutor(len(texts)) as pool:
            responses = list(pool.map(lambda text: post(live.url, {"input": text, "seed": 9}), texts))
    assert out_of_memory, "the batch never ran out of memory: the test did not test that"
    for text, response, audio in zip(texts, responses, expected):
        assert response.status_code == 200 and response.content == audio, text


def test_shutdown_lets_an_active_stream_finish_and_refuses_the_queue(host):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.005})
    medium = TEXT + " " + TEXTS[7]
    expected = alone_pcm(pipeline, medium, seed=3)
    live = serve(pipeline, max_streams=1, max_queue=1, shutdown_grace_seconds=60)
    results: dict[str, httpx.Response] = {}

    def request(name: str, body: dict) -> None:
        results[name] = post(live.url, body)

    finishing = threading.Thread(target=request, args=("active", {"input": medium, "seed": 3}))
    finishing.start()
    wait_until(lambda: live.service.admission.active == 1, "the first stream runs")
    waiting = threading.Thread(target=request, args=("queued", {"input": "Hello."}))
    waiting.start()
    wait_until(lambda: live.service.admission.queued == 1, "the second request is queued")
    live.stop()  # what SIGTERM does: stop admitting, let active streams finish, then exit
    finishing.join(60)
    waiting.join(60)
    assert results["active"].status_code == 200 and results["active"].content == expected
    queued = results["queued"]
    assert queued.status_code == 503 and "shutting down" in queued.json()["error"]["message"]
    assert not live.thread.is_alive()
    assert snapshot_empty(pipeline)


def test_shutdown_ends_streams_still_running_after_the_grace_period(host):
    pipeline = sine_pipeline(host, {"step_sleep_seconds": 0.01})
    live = serve(pipeline, shutdown_grace_seconds=0.5)
    stream = OpenStream(live.url, {"input": LONG_TEXT})
    assert stream.first.wait(120) and stream.status == 200
    live.stop()
    assert not live.thread.is_alive()
    wait_until(lambda: snapshot_empty(pipeline), "the cut stream left the scheduler")
    assert not pipeline.last_metrics.generation.completed
    stream.close()
