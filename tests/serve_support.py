"""What the tests of `seqopt serve` share: a live server in a background thread (the real
uvicorn server on a free loopback port), sine-engine pipelines, and the audio a pipeline
gives alone. Not a test module itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import sine_engine
from seqopt_core import Pipeline, PluginHost
from seqopt_core.server.audio_formats import pcm16
from seqopt_core.server.runner import make_server
from seqopt_core.server.service import SpeechService
from seqopt_core.server.settings import ServerSettings

#: Several segments (target 12 ratio tokens) of mixed lengths.
TEXT = ("The first one is short. Then a second sentence comes along here.\n\n"
        "A third follows it, after a paragraph. Number four is next; five is almost the end. "
        "Six closes the text.")
#: Long enough that a slowed sine stream is still running when a test acts on it.
LONG_TEXT = " ".join(f"Sentence number {i} says a few more words." for i in range(60))


def sine_host() -> PluginHost:
    """The plugins plus the test suite's sine engine."""
    host = PluginHost.discover()
    host.register(sine_engine, name="sine_engine")
    return host


def sine_pipeline(host: PluginHost, options: dict | None = None, **synthesis: Any) -> Pipeline:
    """A sine-engine pipeline: fixed chunks of 4 tokens, segments near 12 ratio tokens."""
    overrides = {"engine": {"name": "sine", "options": options or {}},
                 "estimator": {"name": "ratio"},
                 "chunk_policy": {"name": "fixed", "options": {"chunk_size": 4}},
                 "planner": {"target_tokens": 12, "max_tokens": 40},
                 "synthesis": {"seed": 7, "batch_size": 4, **synthesis}}
    return Pipeline.from_config(overrides=overrides, host=host)


def alone_pcm(pipeline: Pipeline, text: str, seed: int | None = 7, voice: Any = None) -> bytes:
    """The s16le bytes of ``text`` streamed alone on ``pipeline``."""
    with pipeline.stream(text, seed=seed, voice=voice) as stream:
        audio = np.concatenate([chunk.audio for chunk in stream])
    return pcm16(audio).tobytes()


class LiveServer:
    """A real uvicorn server for ``service`` on a free loopback port, in a thread."""

    def __init__(self, service: SpeechService) -> None:
        self.service = service
        self.server = make_server(service, log_level="warning", access_log=False)
        self.thread = threading.Thread(target=self.server.run, name="test-serve", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.url = self.server.urls[0]

    def stop(self) -> None:
        self.server.begin_shutdown()
        self.thread.join(timeout=60)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(pipelines: dict[str, Pipeline] | Pipeline, default: str | None = None, **settings: Any) -> LiveServer:
    """A :class:`LiveServer` over ``pipelines`` (one pipeline: profile ``rtx4090``), port 0."""
    if isinstance(pipelines, Pipeline):
        pipelines = {"rtx4090": pipelines}
    voices = settings.pop("voices", None)
    service = SpeechService(pipelines, default or next(iter(pipelines)),
                            ServerSettings(port=0, **settings), voices)
    return LiveServer(service)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds (a
    generous bound for a busy machine, not a speed requirement)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)
