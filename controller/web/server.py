"""Serving the web app with uvicorn on a thread of its own, with every resource bounded.

- A connection that has not sent a whole request head within
  ``header_timeout`` seconds is closed (uvicorn itself waits forever), so
  slow or stalled clients cannot pile up open sockets.
- Idle keep-alive connections close after ``keepalive_timeout`` seconds.
- At most ``max_connections`` connections or requests at once; beyond that
  uvicorn answers 503 at once rather than queueing without end.
- Blocking handlers run on at most ``workers`` threads (anyio's default
  limiter, shared by every request).
Body limits and body/response timeouts are the :mod:`controller.web.gate`'s.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import anyio.to_thread
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from controller.errors import ControllerError

log = logging.getLogger(__name__)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head never completes."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm()
        super().data_received(data)
        if not self._between_requests():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            log.debug("closing %s: no complete request head in %s s", self.client,
                      self.header_timeout)
            self.transport.close()


class HttpServer:
    """Runs an ASGI app on ``host:port`` (``port=0`` picks a free one) in a thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8080, *,
                 workers: int = 16, max_connections: int = 400,
                 header_timeout: float = 10.0, keepalive_timeout: int = 5):
        self.workers = workers
        protocol = type("Protocol", (BoundedH11Protocol,), {"header_timeout": header_timeout})
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY on accepted connections only
        # for such a socket; without it every keep-alive answer waited 40 ms (Nagle).
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                     socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise ControllerError(f"cannot listen on {host}:{port}: {exc}") from exc
        config = uvicorn.Config(
            app, http=protocol, lifespan="off", log_config=None, access_log=False,
            limit_concurrency=max_connections, timeout_keep_alive=keepalive_timeout,
            timeout_graceful_shutdown=5, server_header=False, backlog=256)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ControllerError(f"the HTTP server did not start: {self.error}")
            time.sleep(0.01)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() and logged
            self.error = exc
            log.exception("HTTP server stopped")

    async def _serve(self) -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.workers
        await self._server.serve(sockets=[self._socket])

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._socket.close()
