"""Serving the web app with uvicorn on a thread of its own, with every resource bounded.

- A connection that has not sent a whole request head within
  ``header_timeout`` seconds is closed (uvicorn itself waits forever), so
  slow or stalled clients cannot pile up open sockets.
- Idle keep-alive connections close after ``keepalive_timeout`` seconds.
- At most ``max_connections`` connections or requests at once; beyond that
  uvicorn answers 503 at once rather than queueing without end.
- Blocking handlers run on at most ``workers`` threads (anyio's default
  limiter, shared by every request).
- With ``tls_cert`` and ``tls_key`` it serves HTTPS only (TLS 1.2 or later):
  a client whose TLS handshake is not done within ``header_timeout`` seconds
  is dropped, and so is one that stalls the closing TLS shutdown as long.
  uvicorn passes asyncio no such timeouts (its defaults are 60 s and 30 s),
  so the thread's event loop adds them. The request-head timeout starts once
  the handshake is done, and so does the connection's count towards
  ``max_connections``.
Body limits and body/response timeouts are the :mod:`controller.web.gate`'s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
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


def tls_context(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server context for the PEM ``cert`` and its ``key``, TLS 1.2 or later; raises
    :class:`ControllerError` naming a file that is missing, unreadable or not the pair."""
    for what, path in (("certificate", cert), ("key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ControllerError(f"HTTPS {what} {os.fsdecode(path)}: {exc.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ControllerError(
            f"HTTPS certificate {os.fsdecode(cert)} with key {os.fsdecode(key)}: {exc}; "
            "expected a PEM certificate and its own PEM private key") from None
    return context


class TlsEventLoop(asyncio.SelectorEventLoop):
    """The HTTP thread's event loop when serving HTTPS: every server it makes speaks TLS
    with ``context`` and cuts a handshake or TLS shutdown that takes longer than
    ``timeout`` seconds (uvicorn passes neither timeout, and asyncio's defaults are
    60 s and 30 s: long enough for half-open clients to pile up)."""

    def __init__(self, context: ssl.SSLContext, timeout: float):
        super().__init__()
        self.context, self.timeout = context, timeout

    async def create_server(  # type: ignore[override]
            self, *args: Any, **kwargs: Any) -> asyncio.Server:
        kwargs.update(ssl=self.context, ssl_handshake_timeout=self.timeout,
                      ssl_shutdown_timeout=self.timeout)
        return await super().create_server(*args, **kwargs)


class HttpServer:
    """Runs an ASGI app on ``host:port`` (``port=0`` picks a free one) in a thread; over
    HTTPS when given ``tls_cert`` and ``tls_key`` (PEM files)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8080, *,
                 workers: int = 16, max_connections: int = 400,
                 header_timeout: float = 10.0, keepalive_timeout: int = 5,
                 tls_cert: str | os.PathLike[str] | None = None,
                 tls_key: str | os.PathLike[str] | None = None):
        self.workers = workers
        if (tls_cert is None) != (tls_key is None):
            raise ControllerError("HTTPS needs both a certificate and its key: "
                                  f"got certificate {tls_cert}, key {tls_key}")
        #: The TLS context when serving HTTPS, else None; checked before the port is taken.
        self.tls: ssl.SSLContext | None = None
        if tls_cert is not None and tls_key is not None:
            self.tls = tls_context(tls_cert, tls_key)
        self._header_timeout = header_timeout
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
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ControllerError(f"the HTTP server did not start: {self.error}")
            time.sleep(0.01)

    def _run(self) -> None:
        tls = self.tls
        factory = None if tls is None else (lambda: TlsEventLoop(tls, self._header_timeout))
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(self._serve())
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
