"""The HTTP front end of ``seqopt serve``: FastAPI routes over a
:class:`~seqopt_core.server.service.SpeechService`.

=========================  ====  ==========================================================
``GET /``                  open  the page: type a text, play it as it streams
``GET /health``            open  status, engine, device, profiles, active and queued streams
``GET /metrics``           key   Prometheus text format
``GET /v1/models``         key   the profiles, then OpenAI's model names mapped to the default
``GET /v1/models/{id}``    key   one of them
``GET /v1/voices``         key   ``default`` and the voices folder's voices
``POST /v1/audio/speech``  key   OpenAI's speech request; audio as it is generated
=========================  ====  ==========================================================

"key": with an API key set, the request needs ``Authorization: Bearer <key>`` (compared
in constant time), else a 401. Every error is OpenAI's JSON error object; an unexpected
exception is logged with its traceback and answered with a generic 500, never the
traceback. The request body of a speech request is limited before it is parsed (413),
and it is parsed here, so a malformed one is a 400 with a message, not FastAPI's 422.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import CONTENT_TYPE, ServerMetrics
from .protocol import (
    AUTHENTICATION, SERVER_ERROR, ApiError, error_body, model_list, parse_speech_request, sse_audio_delta,
    sse_audio_done, sse_error,
)
from .service import Cancelled, Failed, Finished, Piece, SpeechJob, SpeechService

log = logging.getLogger("seqopt.server")

#: Bytes of an over-long body read and thrown away so that the client hears the 413
#: (beyond this the connection is closed instead).
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
#: Routes open without the API key.
OPEN_PATHS = ("/", "/health")


def _page() -> str:
    return (resources.files("seqopt_core.server") / "static" / "index.html").read_text(encoding="utf-8")


def check_key(request: Request, key: str | None) -> None:
    """A 401 unless ``request`` carries ``Authorization: Bearer <key>`` (when a key is set)."""
    if key is None:
        return
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise ApiError(401, "this server needs an API key: send it as the header 'Authorization: Bearer <key>'",
                       type=AUTHENTICATION, code="missing_api_key", headers=challenge)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(401, "the API key is wrong: send the server's key as 'Authorization: Bearer <key>'",
                       type=AUTHENTICATION, code="invalid_api_key", headers=challenge)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 once it passes ``limit`` bytes (before any parsing)."""
    too_large = ApiError(413, f"the request body is larger than this server takes ({limit} bytes); "
                              "send a shorter input", code="request_too_large")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "the Content-Length header is not a number") from None
        if size > DRAIN_LIMIT_BYTES:
            too_large.headers["Connection"] = "close"
            raise too_large
    parts: list[bytes] = []
    received = 0
    async for part in request.stream():
        received += len(part)
        if received > limit:
            if received > DRAIN_LIMIT_BYTES:
                too_large.headers["Connection"] = "close"
                raise too_large
            continue  # read on and drop, so that the client is still listening for the answer
        parts.append(part)
    if received > limit:
        raise too_large
    return b"".join(parts)


def parse_json(body: bytes) -> Any:
    """``body`` decoded as JSON, or a 400 that says where it is malformed."""
    if not body.strip():
        raise ApiError(400, "the request body is empty: send a JSON object with at least 'input'")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the request body is not UTF-8 (byte {exc.start}): send JSON in UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}, column "
                            f"{exc.colno}") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply to be a speech request") from None


def _no_body() -> AsyncIterator[bytes]:
    async def nothing() -> AsyncIterator[bytes]:
        if False:  # pragma: no cover
            yield b""
    return nothing()


class SpeechStreamResponse(StreamingResponse):
    """A speech stream's body, sent piece by piece as its thread makes them.

    ``audio``: the encoded bytes as they come; a failure after the start cuts the body
    short (the connection closes without the chunked body's end, so the client sees an
    incomplete response, not a short file). ``sse``: a ``speech.audio.delta`` event per
    piece, then ``speech.audio.done`` with the usage, or an ``error`` event.
    """

    def __init__(self, job: SpeechJob, first: Piece, headers: dict[str, str]) -> None:
        super().__init__(_no_body(), status_code=200, headers=headers, media_type=job.prepared.media_type)
        self.job = job
        self.first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        job = self.job
        sse = job.prepared.stream_format == "sse"
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            item: Any = self.first
            while True:
                if isinstance(item, Piece):
                    if item.data:
                        body = sse_audio_delta(item.data) if sse else item.data
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                    job.piece_sent(item)
                elif isinstance(item, Finished):
                    # The thread closes its stream right after this: wait for it, so that a
                    # client that has the whole body can count on the stream's slot being free.
                    await job.wait_ended()
                    if sse:
                        await send({"type": "http.response.body", "more_body": True,
                                    "body": sse_audio_done(item.input_tokens, item.output_tokens)})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                elif isinstance(item, Failed):
                    await job.wait_ended()
                    log.warning("speech stream on profile %s failed after %d pieces: %s",
                                job.prepared.profile, job.sent_pieces, item.error.message)
                    if sse:
                        await send({"type": "http.response.body", "more_body": True,
                                    "body": sse_error(item.error.message, type=item.error.type)})
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return  # audio: cut short, without the body's end
                elif isinstance(item, Cancelled):
                    return
                item = await job.next()
        except asyncio.CancelledError:
            # The server's shutdown grace period ran out: end this body short, quietly.
            log.info("speech stream on profile %s ended by the shutdown after %d pieces",
                     job.prepared.profile, job.sent_pieces)
        finally:
            job.sender_ended()


class StatusCounter:
    """ASGI middleware: counts every answered request by its HTTP status."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.metrics.request_finished(status if status is not None else 500)


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(service: SpeechService) -> FastAPI:
    """The FastAPI app serving ``service`` (its shutdown closes the service's streams)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.close()

    app = FastAPI(title="seqopt", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(StatusCounter, metrics=service.metrics)
    page = _page()
    key = service.settings.key

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = (f"no such route: {request.method} {request.url.path}; the API is GET /v1/models, "
                       "GET /v1/voices, POST /v1/audio/speech, GET /health, GET /metrics")
            return _error_response(ApiError(404, message, code="not_found"))
        if exc.status_code == 405:
            return _error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}",
                                            code="method_not_allowed", headers=dict(exc.headers or {})))
        return _error_response(ApiError(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(ApiError(400, "the request is malformed: check its fields and types"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("the server failed unexpectedly; its log says why", type=SERVER_ERROR),
                            status_code=500)

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "no-referrer"})

    # The scheduler's snapshot may wait for its lock while a batch step runs: read it off
    # the event loop, so that other streams' audio keeps flowing meanwhile.

    @app.get("/health")
    async def health() -> JSONResponse:
        body = await asyncio.to_thread(service.health)
        return JSONResponse(body, status_code=503 if service.shutting_down else 200)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        check_key(request, key)
        return PlainTextResponse(await asyncio.to_thread(service.metrics.render), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        check_key(request, key)
        return JSONResponse(model_list(service.profiles, service.default_profile, service.created))

    @app.get("/v1/models/{model_id}")
    async def model(request: Request, model_id: str) -> JSONResponse:
        check_key(request, key)
        for entry in model_list(service.profiles, service.default_profile, service.created)["data"]:
            if entry["id"] == model_id:
                return JSONResponse(entry)
        raise ApiError(404, f"unknown model {model_id!r}", param="model", code="model_not_found")

    @app.get("/v1/voices")
    async def voices(request: Request) -> JSONResponse:
        check_key(request, key)
        return JSONResponse(service.voice_list())

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        received = time.perf_counter()
        check_key(request, key)
        body = await read_body(request, service.settings.body_limit)
        prepared = service.prepare(parse_speech_request(parse_json(body)))

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        job = await service.start(prepared, disconnected, received_at=received)
        try:
            first = await job.first()
        except BaseException:
            job.sender_ended()
            raise
        headers = {
            "X-Sample-Rate": str(int(prepared.pipeline.sample_rate)),
            "X-Seqopt-Profile": prepared.profile,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies such as nginx: pass each piece on at once
        }
        return SpeechStreamResponse(job, first, headers)

    return app


__all__ = ["SpeechStreamResponse", "StatusCounter", "check_key", "create_app", "parse_json", "read_body"]
