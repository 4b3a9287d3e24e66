"""The speech service behind ``seqopt serve``: the loaded pipelines, admission control, and
one stream per request, run in its own thread and handed to the async front end.

No web framework here: :mod:`seqopt_core.server.app` turns HTTP into calls of
:class:`SpeechService` and back. Everything async runs on the server's event loop;
each request's synthesis runs in a thread of its own.

How a speech request goes:

1. :meth:`SpeechService.prepare` checks the request against what this server has
   (profile, voice, format, input length) and gives a :class:`PreparedSpeech`, or an
   :class:`~seqopt_core.server.protocol.ApiError` (400, 413).
2. :meth:`SpeechService.start` admits it (:class:`Admission`): a free stream slot at
   once, or a place in the FIFO queue until one frees, or a 503 with ``Retry-After``.
   It then starts the request's thread, which iterates ``pipeline.stream(...)`` and
   encodes each chunk (:func:`~seqopt_core.server.audio_formats.open_encoder`). Every
   request's segments go to its profile's one scheduler, so rows of all requests share
   the T3 batch.
3. The encoded bytes reach the response through a bounded :class:`StreamChannel`.
   :meth:`SpeechJob.first` waits for the first piece: a failure before any audio (bad
   text, an unusable voice file) is still an ordinary HTTP error.
4. A client that goes away (the front end calls :meth:`SpeechJob.cancel` on disconnect)
   stops its stream: the thread closes it at the next chunk, so its rows and queued
   segments leave the scheduler, and the slot goes to the next request in the queue.

A failure inside one request ends only that request. Its thread catches everything:
a :class:`~seqopt_core.errors.SeqoptError` is answered with its message, anything else
is logged here with its traceback and answered with a generic message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SeqoptError, SynthesisError
from .audio_formats import AudioFormat, UnsupportedFormat, audio_formats, available_format_names, open_encoder
from .metrics import ACTIVE_STREAMS, QUEUED_REQUESTS, T3_BATCH_ROWS, PlaybackTracker, ServerMetrics
from .protocol import (
    INVALID_REQUEST, OVERLOADED, SERVER_ERROR, SSE_MEDIA_TYPE, ApiError, SpeechRequest, choose_profile,
)
from .settings import ServerSettings
from .voices import VoiceLibrary

log = logging.getLogger("seqopt.server")

#: Encoded pieces a stream may have made ahead of what its client has taken.
CHANNEL_CAPACITY = 32
#: How long :meth:`SpeechService.close` waits for the streams' threads to end.
CLOSE_WAIT_SECONDS = 10.0
#: What a client is told when something unexpected failed (the details are in the log).
GENERIC_FAILURE = "the server failed while synthesizing this request; its log says why"


# --- pieces handed from a stream's thread to its response ------------------------------


@dataclass(frozen=True)
class Piece:
    """Encoded audio to send now (``data`` may be empty while a codec fills a frame)."""

    data: bytes
    audio_seconds: float


@dataclass(frozen=True)
class Finished:
    """The stream ended with all its audio; what it used (OpenAI's ``usage``)."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Failed:
    """The stream failed: the status and error to answer (before any audio), or to report."""

    error: ApiError


@dataclass(frozen=True)
class Cancelled:
    """The stream was stopped (its client went away, or the server is shutting down)."""


Item = Piece | Finished | Failed | Cancelled


class StreamChannel:
    """A bounded queue from one stream's thread to its async response.

    The thread :meth:`put`\\ s items and blocks while ``capacity`` are waiting; the
    response awaits :meth:`get`. :meth:`cancel` (from either side) wakes both: ``put``
    then refuses, and ``get`` returns :class:`Cancelled` once the items are gone.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int = CHANNEL_CAPACITY) -> None:
        self._loop = loop
        self._capacity = capacity
        self._items: deque[Item] = deque()
        self._lock = threading.Condition()
        self._ready = asyncio.Event()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def put(self, item: Item, *, force: bool = False) -> bool:
        """Hand ``item`` to the response (thread side); ``False`` if the channel was
        cancelled. Waits while the channel is full, unless ``force``."""
        with self._lock:
            while not force and len(self._items) >= self._capacity and not self._cancelled.is_set():
                self._lock.wait(0.25)
            if self._cancelled.is_set() and not force:
                return False
            self._items.append(item)
        self._wake()
        return True

    async def get(self) -> Item:
        """The next item (async side); :class:`Cancelled` after :meth:`cancel`."""
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    self._lock.notify_all()
                    return item
                if self._cancelled.is_set():
                    return Cancelled()
                self._ready.clear()
            await self._ready.wait()

    def cancel(self) -> None:
        """Stop the stream: the thread's next :meth:`put` refuses; waiting sides wake."""
        with self._lock:
            self._cancelled.set()
            self._lock.notify_all()
        self._wake()


# --- admission ----------------------------------------------------------------------------


class ClientGone(Exception):
    """The client went away while its request waited in the queue."""


class Admission:
    """At most ``max_active`` streams at once, then up to ``max_queue`` waiting in order.

    Event-loop side only (not thread-safe); a stream's thread releases its slot through
    ``loop.call_soon_threadsafe(admission.release)``.
    """

    def __init__(self, max_active: int, max_queue: int, retry_after: int) -> None:
        self.max_active = max_active
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.active = 0
        self.closed = False
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def _busy(self, message: str) -> ApiError:
        return ApiError(503, message, type=OVERLOADED, code="server_busy",
                        headers={"Retry-After": str(self.retry_after)})

    def enter(self) -> asyncio.Future[None] | None:
        """A slot now (``None``), or a future that resolves when the slot is this
        request's; a 503 :class:`ApiError` when the queue is full or the server closes."""
        if self.closed:
            raise self._busy("the server is shutting down and takes no new requests; retry on another "
                             "replica or after it restarted")
        if self.active < self.max_active and not self._waiting:
            self.active += 1
            return None
        if len(self._waiting) >= self.max_queue:
            raise self._busy(f"the server is busy: {self.active} streams are running and {len(self._waiting)} "
                             f"requests are waiting (the most it queues); retry in {self.retry_after} s")
        ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        return ticket

    def leave(self, ticket: asyncio.Future[None], why: BaseException) -> None:
        """A queued request gives up its place (its client went away)."""
        if ticket in self._waiting:
            self._waiting.remove(ticket)
        if not ticket.done():
            ticket.set_exception(why)

    def release(self) -> None:
        """A stream ended: its slot goes to the first request still waiting."""
        self.active = max(0, self.active - 1)
        while self._waiting and self.active < self.max_active:
            ticket = self._waiting.popleft()
            if not ticket.done():
                self.active += 1
                ticket.set_result(None)

    def close(self) -> None:
        """Admit nobody more: every waiting request gets a 503."""
        self.closed = True
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.done():
                ticket.set_exception(self._busy("the server is shutting down; retry on another replica or "
                                                "after it restarted"))


# --- one request ------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedSpeech:
    """A checked speech request: what to say, on which pipeline, in which voice and format."""

    text: str
    profile: str
    pipeline: Any
    voice: str
    voice_path: Path | None
    audio_format: AudioFormat
    stream_format: str
    seed: int | None | Any = ...  # ``...``: the config's synthesis.seed
    language: str | None = None  # ``None``: the profile's synthesis.language

    @property
    def media_type(self) -> str:
        return SSE_MEDIA_TYPE if self.stream_format == "sse" else self.audio_format.media_type


class SpeechJob:
    """One speech request's stream: its thread, its channel, and how it ended."""

    def __init__(self, service: SpeechService, prepared: PreparedSpeech, received_at: float) -> None:
        self.service = service
        self.prepared = prepared
        self.received_at = received_at
        self.loop = asyncio.get_running_loop()
        self.channel = StreamChannel(self.loop)
        #: The pipeline run's metrics once the thread closed its stream.
        self.run_metrics: Any = None
        self.tracker = PlaybackTracker()
        self.first_audio_sent: float | None = None
        self.audio_seconds_sent = 0.0
        self.sent_pieces = 0
        self._held_seconds = 0.0  # audio encoded but not yet out of the codec
        self._thread: threading.Thread | None = None
        self._holds_slot = False
        self._worker_ended = asyncio.Event()
        self._sender_ended = False
        self._finalized = False
        self._watcher: asyncio.Task[None] | None = None
        self._ticket: asyncio.Future[None] | None = None
        self._stream: Any = None  # the pipeline's AudioStream, once the thread opened it

    # -- the async side --------------------------------------------------------------

    def watch(self, disconnected: Callable[[], Awaitable[None]]) -> None:
        """Cancel this job when ``disconnected()`` returns (the client went away)."""
        async def watcher() -> None:
            try:
                await disconnected()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a broken receive means the client is gone too
                pass
            self.cancel()

        self._watcher = self.loop.create_task(watcher())

    def cancel(self) -> None:
        """Stop this request: leave the queue, or stop its stream now (its rows leave the
        T3 batch at the next step, its queued segments go; a model call under way ends first)."""
        if self._ticket is not None:
            self.service.admission.leave(self._ticket, ClientGone())
        self.stop_stream()

    def stop_stream(self) -> None:
        """No more audio for this request (from any thread, without waiting)."""
        self.channel.cancel()  # first: the thread then sees a cancelled channel when the stream ends
        stream = self._stream
        if stream is not None:
            stream.stop()

    @property
    def ended(self) -> bool:
        """Whether the thread has closed its stream (or never ran)."""
        return self._worker_ended.is_set()

    async def wait_ended(self) -> None:
        await self._worker_ended.wait()

    async def first(self) -> Piece:
        """The first piece of audio; an :class:`ApiError` if the stream failed (or was
        cancelled) before it."""
        item = await self.next()
        if isinstance(item, Piece):
            return item
        if isinstance(item, Failed):
            await self.wait_ended()  # its slot is free once the client has the error
            self.sender_ended()
            raise item.error
        self.sender_ended()
        if isinstance(item, Finished):  # pragma: no cover - a stream always has a first chunk
            raise ApiError(500, GENERIC_FAILURE, type=SERVER_ERROR)
        raise ApiError(499, "the client closed the request before its audio started")

    async def next(self) -> Item:
        """The next item from the stream's thread."""
        return await self.channel.get()

    def piece_sent(self, piece: Piece) -> None:
        """The response sent ``piece`` (for time to first audio and stalls)."""
        self._held_seconds += piece.audio_seconds
        if not piece.data:  # a codec holds this audio back: it reaches the client later
            return
        now = time.perf_counter()
        seconds, self._held_seconds = self._held_seconds, 0.0
        if seconds > 0:
            if self.first_audio_sent is None:
                self.first_audio_sent = now
            self.tracker.chunk(now=now, audio_seconds=seconds)
            self.audio_seconds_sent += seconds
        self.sent_pieces += 1

    def sender_ended(self) -> None:
        """The response is over (sent, failed or cut off): stop the stream if it still runs."""
        if self._sender_ended:
            return
        self._sender_ended = True
        if not self.ended:
            self.stop_stream()
        self._maybe_finalize()

    # -- the thread ------------------------------------------------------------------

    def _start(self) -> None:
        self._holds_slot = True
        self._thread = threading.Thread(target=self._work, name="seqopt-speech", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        prepared = self.prepared
        stream = None
        encoder = None
        try:
            try:
                stream = prepared.pipeline.stream(prepared.text, seed=prepared.seed, voice=prepared.voice_path,
                                                  language=prepared.language)
            except SeqoptError as exc:
                self._fail(_as_api_error(exc, prepared, param="voice" if prepared.voice_path else None))
                return
            self._stream = stream
            if self.channel.cancelled:  # cancelled while the stream was being opened
                stream.stop()
            encoder = open_encoder(prepared.audio_format.name, int(prepared.pipeline.sample_rate))
            for chunk in stream:
                if self.channel.cancelled:
                    break
                data = encoder.encode(chunk.audio)
                if not self.channel.put(Piece(data, float(chunk.event.audio_seconds))):
                    break
            else:
                if stream.stopped:  # the stream ended early because it was stopped
                    return
                tail = encoder.finish()
                metrics = stream.metrics
                self.channel.put(Piece(tail, 0.0))
                plan_tokens = metrics.generation.plan.total_tokens if metrics is not None else 0
                speech_tokens = metrics.speech_tokens if metrics is not None else 0
                self.channel.put(Finished(int(plan_tokens), int(speech_tokens)))
        except SeqoptError as exc:
            self._fail(_as_api_error(exc, prepared, param="input"))
        except Exception:  # noqa: BLE001 - one request's failure must not end the server
            log.exception("speech request on profile %s failed", prepared.profile)
            self._fail(ApiError(500, GENERIC_FAILURE, type=SERVER_ERROR))
        finally:
            try:
                if stream is not None:
                    stream.close()  # frees its rows and queued segments in the scheduler
                    self.run_metrics = stream.metrics
                if encoder is not None:
                    encoder.close()
            except Exception:  # noqa: BLE001
                log.exception("closing a speech stream failed")
            try:
                self.loop.call_soon_threadsafe(self._thread_ended)
            except RuntimeError:  # the loop is closed (the server is gone)
                pass

    def _fail(self, error: ApiError) -> None:
        self.channel.put(Failed(error), force=True)  # even when full: the response must learn of it

    def _thread_ended(self) -> None:
        self._worker_ended.set()
        if self._holds_slot:
            self._holds_slot = False
            self.service.admission.release()
        self._maybe_finalize()

    def _maybe_finalize(self) -> None:
        if self._finalized or not self._sender_ended or not (self.ended or self._thread is None):
            return
        self._finalized = True
        if self._watcher is not None:
            self._watcher.cancel()
        self.service._stream_done(self)


def _as_api_error(exc: SeqoptError, prepared: PreparedSpeech, param: str | None) -> ApiError:
    """A stream's error as the client is told it: a synthesis failure is the server's
    (500), anything else the request's (400). File paths are replaced by the voice name."""
    message = str(exc)
    if prepared.voice_path is not None:
        message = message.replace(str(prepared.voice_path), prepared.voice)
        message = message.replace(str(prepared.voice_path.parent), "the voices folder")
    if isinstance(exc, SynthesisError):
        return ApiError(500, message, type=SERVER_ERROR)
    return ApiError(400, message, type=INVALID_REQUEST, param=param)


# --- the service --------------------------------------------------------------------------


def build_pipelines(loaded: Mapping[str, Any], host: Any) -> dict[str, Any]:
    """One :class:`~seqopt_core.pipeline.Pipeline` per profile of ``loaded`` (profile name
    to its :class:`~seqopt_core.config.LoadedConfig`), in order, on one loaded engine: the
    first loads it, the others are built on it (``engine=``)."""
    from ..pipeline import Pipeline

    pipelines: dict[str, Any] = {}
    engine = None
    for name, config in loaded.items():
        pipeline = Pipeline.from_config(config, host=host, engine=engine)
        engine = engine or pipeline.engine
        pipelines[name] = pipeline
    return pipelines


class SpeechService:
    """The loaded pipelines (one per profile, on one engine), the voices, the limits and
    the metrics of one server."""

    def __init__(self, pipelines: Mapping[str, Any], default_profile: str, settings: ServerSettings,
                 voices: VoiceLibrary | None = None) -> None:
        if not pipelines:
            raise ConfigError("a speech server needs at least one pipeline")
        if default_profile not in pipelines:
            raise ConfigError(f"the default profile {default_profile!r} is not among the pipelines "
                              f"({', '.join(pipelines)})")
        self.pipelines = dict(pipelines)
        self.default_profile = default_profile
        self.settings = settings
        self.voices = voices if voices is not None else VoiceLibrary(settings.voices_dir)
        default = self.pipelines[default_profile]
        if self.voices.folder is not None and not getattr(default, "voices", False):
            raise ConfigError(f"--voices was given, but engine {default.engine.describe().get('name')!r} "
                              "speaks only in its own voice; leave --voices out")
        self.admission = Admission(settings.max_streams, settings.max_queue, settings.retry_after_seconds)
        self.metrics = ServerMetrics(gauges={
            ACTIVE_STREAMS: lambda: self.admission.active,
            QUEUED_REQUESTS: lambda: self.admission.queued,
            T3_BATCH_ROWS: self.batch_rows,
        })
        self.created = int(time.time())
        self._jobs: set[SpeechJob] = set()
        self.shutting_down = False
        audio_formats()  # probe the encoders now, not in the first request

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles served, the default first."""
        return (self.default_profile, *(p for p in self.pipelines if p != self.default_profile))

    @property
    def sample_rate(self) -> int:
        return int(self.pipelines[self.default_profile].sample_rate)

    def batch_rows(self) -> int:
        """Rows in the T3 batches of every profile's scheduler now."""
        return sum(p.scheduler.snapshot().rows for p in self.pipelines.values())

    # -- the small endpoints ---------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health``: whether the server takes requests, and what it runs."""
        engine = self.pipelines[self.default_profile].engine
        info = engine.describe()
        batch = [p.scheduler.snapshot() for p in self.pipelines.values()]
        return {
            "status": "shutting_down" if self.shutting_down else "ok",
            "engine": info.get("name"),
            "device": info.get("device"),
            "random_weights": bool(info.get("random_weights", False)),
            "sample_rate": self.sample_rate,
            "profiles": list(self.profiles),
            "default_profile": self.default_profile,
            "active": self.admission.active,
            "queued": self.admission.queued,
            "max_streams": self.settings.max_streams,
            "max_queue": self.settings.max_queue,
            "max_input_chars": self.settings.max_input_chars,
            "batch": {"streams": sum(s.streams for s in batch), "rows": sum(s.rows for s in batch),
                      "queued_segments": sum(s.queued for s in batch)},
            "formats": list(available_format_names()),
        }

    def voice_list(self) -> dict[str, Any]:
        """``GET /v1/voices``."""
        return {"object": "list", "data": [{"id": name, "object": "voice"} for name in self.voices.names()]}

    # -- speech ------------------------------------------------------------------------

    def prepare(self, request: SpeechRequest) -> PreparedSpeech:
        """A request checked against this server; a 400 or 413 :class:`ApiError` otherwise."""
        from ..text import validate_text

        text = request.input
        limit = self.settings.max_input_chars
        if len(text) > limit:
            raise ApiError(413, f"input is {len(text)} characters; this server takes at most {limit} "
                                "(its --max-input-chars): split the text into several requests",
                           param="input", code="input_too_long")
        try:
            validate_text(text)
        except SeqoptError as exc:
            raise ApiError(400, f"input: {exc}", param="input") from None
        choice = choose_profile(request, self.profiles, self.default_profile)
        voice = request.voice_name
        voice_path = self.voices.resolve(voice)
        formats = audio_formats()
        name = request.response_format
        audio_format = formats.get(name)
        if audio_format is None or not audio_format.available:
            reason = ("it is not one of " + ", ".join(formats) if audio_format is None
                      else audio_format.reason or "it does not work here")
            raise ApiError(400, str(UnsupportedFormat(name, reason, available_format_names())),
                           param="response_format")
        seed = request.seed if request.seed is not None else ...
        pipeline = self.pipelines[choice.profile]
        if request.language is not None:
            try:
                pipeline.planner_for(request.language)
            except SeqoptError as exc:
                raise ApiError(400, str(exc), param="language") from None
        return PreparedSpeech(text, choice.profile, pipeline, voice, voice_path,
                              audio_format, request.stream_format, seed, request.language)

    async def start(self, prepared: PreparedSpeech,
                    disconnected: Callable[[], Awaitable[None]] | None = None,
                    received_at: float | None = None) -> SpeechJob:
        """Admit ``prepared`` (waiting in the queue if need be) and start its stream.

        ``disconnected`` returns when the client goes away: the request then leaves the
        queue, or its stream stops. Raises a 503 :class:`ApiError` when the queue is
        full or the server shuts down, and a 499 one when the client left while queued.
        """
        job = SpeechJob(self, prepared, received_at if received_at is not None else time.perf_counter())
        ticket = self.admission.enter()
        if disconnected is not None:
            job.watch(disconnected)
        if ticket is not None:
            job._ticket = ticket
            try:
                await ticket
            except ClientGone:
                job.sender_ended()
                raise ApiError(499, "the client closed the request while it waited for a free stream") from None
            except ApiError:
                job.sender_ended()
                raise
            except asyncio.CancelledError:
                self.admission.leave(ticket, ClientGone())
                if ticket.done() and not ticket.cancelled() and ticket.exception() is None:
                    self.admission.release()  # granted just as we were cancelled
                job.sender_ended()
                raise
            finally:
                job._ticket = None
        if job.channel.cancelled:  # the client left as its turn came
            self.admission.release()
            job.sender_ended()
            raise ApiError(499, "the client closed the request before its stream started")
        self._jobs.add(job)
        job._start()
        return job

    def _stream_done(self, job: SpeechJob) -> None:
        """Record a finished stream's metrics (both its thread and its response ended)."""
        self._jobs.discard(job)
        if job._thread is None:
            return  # never started (left the queue, or refused)
        metrics = job.run_metrics
        ttfa = None if job.first_audio_sent is None else job.first_audio_sent - job.received_at
        rtf = None
        s3gen_calls = 0
        if metrics is not None:
            rtf = metrics.generation.rtf
            if not math.isfinite(rtf):
                rtf = None
            s3gen_calls = sum(1 for c in metrics.chunks if c.s3gen_seconds > 0) or len(metrics.chunks)
        try:
            self.metrics.stream_finished(ttfa, rtf, job.audio_seconds_sent, s3gen_calls,
                                         job.tracker.stalls, job.tracker.stall_seconds)
        except ValueError:  # pragma: no cover - numbers out of range are a bug; never break a request
            log.exception("could not record a stream's metrics")

    # -- shutdown ----------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Stop admitting (503 from now on, also for every queued request); active streams run on."""
        if not self.shutting_down:
            self.shutting_down = True
            self.admission.close()
            log.info("shutting down: %d active streams may finish (grace %.0f s)", len(self._jobs),
                     self.settings.shutdown_grace_seconds)

    async def close(self, wait_seconds: float = CLOSE_WAIT_SECONDS) -> None:
        """End every stream still running (their threads close them at the next chunk)
        and wait for their threads, at most ``wait_seconds``."""
        self.begin_shutdown()
        jobs = list(self._jobs)
        for job in jobs:
            job.stop_stream()
        if jobs:
            done = asyncio.gather(*(job.wait_ended() for job in jobs))
            try:
                await asyncio.wait_for(done, timeout=wait_seconds)
            except asyncio.TimeoutError:
                log.warning("%d speech streams were still in a model call after %.0f s; leaving them",
                            sum(1 for j in jobs if not j.ended), wait_seconds)


__all__ = ["Admission", "Cancelled", "Failed", "Finished", "Piece", "PreparedSpeech", "SpeechJob",
           "SpeechService", "StreamChannel", "build_pipelines"]
