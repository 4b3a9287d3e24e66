"""Running the speech server under uvicorn, with seqopt's shutdown rules.

On SIGTERM or SIGINT (:class:`SpeechServer`):

1. the service stops admitting (new and queued requests get a 503, ``/health`` says
   ``shutting_down``) and uvicorn stops accepting connections;
2. active streams run on for up to ``shutdown_grace_seconds``;
3. what is still running then is cancelled: each stream's thread closes its stream at
   its next chunk, and the process exits with status 0 (uvicorn's own signal re-raise,
   which would end the process with the signal's status, is not done).

A second SIGINT (Ctrl-C twice) skips the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import threading
from collections.abc import Callable, Generator
from types import FrameType

import uvicorn

from .app import create_app
from .service import SpeechService

#: The signals that end the server gracefully.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SpeechServer(uvicorn.Server):
    """uvicorn's server, telling the service when shutdown begins, and exiting cleanly."""

    def __init__(self, config: uvicorn.Config, service: SpeechService,
                 on_started: Callable[[list[str]], None] | None = None) -> None:
        super().__init__(config)
        self.service = service
        self.on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def urls(self) -> list[str]:
        """``http://host:port`` of every socket listened on (the real port for ``port=0``)."""
        urls = []
        for server in getattr(self, "servers", []):
            for sock in server.sockets or []:
                host, port = sock.getsockname()[:2]
                urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
        return urls

    async def startup(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started(self.urls)

    def begin_shutdown(self) -> None:
        """Stop admitting now and let uvicorn shut down (from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.service.begin_shutdown)
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.service.begin_shutdown)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """SIGINT and SIGTERM start the graceful shutdown (main thread only); unlike
        uvicorn's own, the signal is not raised again afterwards, so the exit status is 0."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def make_server(service: SpeechService, *, log_level: str = "info", access_log: bool = True,
                on_started: Callable[[list[str]], None] | None = None) -> SpeechServer:
    """A :class:`SpeechServer` for ``service`` on its settings' host and port (not started:
    ``.run()`` it, in the main thread for the signal handling)."""
    settings = service.settings
    config = uvicorn.Config(
        create_app(service), host=settings.host, port=settings.port, log_level=log_level,
        access_log=access_log, http="h11", ws="none", lifespan="on", server_header=False,
        timeout_graceful_shutdown=int(math.ceil(settings.shutdown_grace_seconds)),
        timeout_keep_alive=5)
    return SpeechServer(config, service, on_started=on_started)


__all__ = ["STOP_SIGNALS", "SpeechServer", "make_server"]
