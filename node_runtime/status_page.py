"""The technician's status page: the device answering on its local address.

A phone on the same network opens ``http://<device>:8080/`` and reads, in one
screen, whether the device is connected to the broker and, if not, why
(:mod:`node_runtime.diagnose`); ``/status.json`` says the same as JSON.

The server answers one request at a time (``HTTPServer``, not the threading
one): a kiosk has little memory and nothing here needs more. A client gets a
few seconds to send its request head, of a few kilobytes at most, and the
report is made again at most every five seconds, so neither a slow client nor
a reloading one can keep the node busy. ``http.server`` is imported only when
the page starts, so nodes that serve no page do not carry it.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from node_runtime.diagnose import LABELS, diagnose, local_time
from wire.messages import format_ts, parse_ts, utc_now

if TYPE_CHECKING:
    from node_runtime.node import Node

log = logging.getLogger(__name__)

MAX_AGE = 5.0  # seconds a report is shown again rather than made again
TIMEOUT = 5.0  # seconds a client has to send its request head
MAX_REQUEST = 8 * 1024  # bytes of request line and headers read; the rest is ignored

Snapshot = Callable[[], dict[str, Any]]


def node_status(node: Node) -> dict[str, Any]:
    """What the page shows of ``node``: who it is, the check's report, its state."""
    report = diagnose(node.config, node.session, clock_synced=node.clock_synced)
    return {
        "device_id": node.device_id, "role": node.config.role, "sw": node.sw_version,
        "uptime_s": round(node.uptime), "clock_synced": node.clock_synced(),
        "outbox_depth": node.outbox.depth, "link": node.link(),
        "checked_at": format_ts(utc_now()), **report.as_dict(),
    }


class StatusPage:
    """The page's HTTP server on a daemon thread; a context manager."""

    def __init__(self, snapshot: Snapshot, *, host: str = "0.0.0.0", port: int = 8080,
                 max_age: float = MAX_AGE, timeout: float = TIMEOUT,
                 clock: Callable[[], float] = time.monotonic):
        self.host, self.timeout = host, timeout
        self._port, self._snapshot, self._max_age, self._clock = port, snapshot, max_age, clock
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port served (the one the system chose, for port 0)."""
        return int(self._server.server_address[1]) if self._server else self._port

    def current(self) -> dict[str, Any]:
        """The latest snapshot, made again only when older than ``max_age`` (counted from
        when it was finished, so checks never run back to back)."""
        with self._lock:
            if self._cached is None or self._clock() - self._cached[0] >= self._max_age:
                snapshot = self._snapshot()
                self._cached = (self._clock(), snapshot)
            return self._cached[1]

    def start(self) -> None:
        """Bind and serve; raises :class:`OSError` if the address cannot be had."""
        self._server = _make_server(self, self._port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-page",
                                        kwargs={"poll_interval": 0.5}, daemon=True)
        self._thread.start()
        log.info("status page on http://%s:%s/", self.host, self.port)

    def close(self) -> None:
        """Stop serving (after the request in hand, if any) and free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StatusPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Bounded:
    """A request's input that ends after ``limit`` bytes: a GET's head fits, a flood does not."""

    def __init__(self, raw: Any, limit: int):
        self._raw, self._left = raw, limit

    def readline(self, size: int = -1) -> bytes:
        return self._take(self._raw.readline, size)

    def read(self, size: int = -1) -> bytes:
        return self._take(self._raw.read, size)

    def _take(self, reader: Callable[[int], bytes], size: int) -> bytes:
        n = self._left if size < 0 else min(size, self._left)
        data = reader(n) if n > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._raw.close()


def _make_server(page: StatusPage, port: int) -> Any:
    import http.server
    import socketserver

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = page.timeout  # each wait on the socket (sending the answer included)
        server_version, sys_version = "thanthien-node", ""

        def setup(self) -> None:
            super().setup()
            self.rfile = _Bounded(self.rfile, MAX_REQUEST)  # type: ignore[assignment]
            # The socket's timeout bounds each wait, not a client sending a byte at a
            # time: the whole head must arrive in time, or the connection is cut.
            self.cutoff = threading.Timer(page.timeout, self._cut)
            self.cutoff.start()

        def _cut(self) -> None:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def do_GET(self) -> None:
            self.cutoff.cancel()
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(render_html(page.current()), "text/html; charset=utf-8")
            elif path == "/status.json":
                self._send(json.dumps(page.current(), ensure_ascii=False), "application/json")
            else:
                self.send_error(404)

        def _send(self, text: str, content_type: str) -> None:
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def finish(self) -> None:
            self.cutoff.cancel()
            super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    class Server(http.server.HTTPServer):
        address_family = socket.AF_INET6 if ":" in page.host else socket.AF_INET

        def server_bind(self) -> None:
            # HTTPServer's own looks the host's name up (getfqdn): a node with no DNS
            # would wait on that at start.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = page.host, int(self.server_address[1])

        def handle_error(self, request: Any, client_address: Any) -> None:
            log.debug("status page request from %s failed", client_address, exc_info=True)

    return Server((page.host, port), Handler)


_STYLE = """body{font-family:sans-serif;font-size:20px;margin:0;padding:12px;background:#f3f3f3;
color:#111;line-height:1.35}h1{font-size:26px;margin:4px 0 12px}.en{display:block;
font-size:15px;color:#555;font-weight:normal}.verdict{padding:16px;border-radius:10px;
color:#fff;font-size:24px;font-weight:bold}.verdict .en{color:#f0f0f0}.good{background:#1b7f3b}
.warn{background:#a15c00}.bad{background:#b3261e}ul{list-style:none;padding:0}li{background:#fff;
margin:8px 0;padding:10px;border-radius:8px}.m{font-size:26px;font-weight:bold;margin-right:6px}
.ok{color:#1b7f3b}.fail{color:#b3261e}.na{color:#888}table{width:100%;background:#fff;
border-radius:8px;padding:6px}td{padding:6px;vertical-align:top}"""
_MARKS = {True: ("✔", "ok"), False: ("✘", "fail"), None: ("–", "na")}


def render_html(status: dict[str, Any]) -> str:
    """The page: Vietnamese first, English under it in smaller type; no script, no links
    to anything outside the device. Every value is escaped."""
    e = html.escape
    tone = "good" if status["ok"] else "warn" if status["connected"] else "bad"
    checks = "".join(
        f'<li><span class="m {_MARKS[c["ok"]][1]}">{_MARKS[c["ok"]][0]}</span>'
        f'<b>{e(LABELS[c["name"]][1])}</b>: {e(c["detail_vi"])}'
        f'<span class="en">{e(LABELS[c["name"]][0])}: {e(c["detail"])}</span></li>'
        for c in status["checks"])
    rows = "".join(f'<tr><td>{vi}<span class="en">{en}</span></td><td>{e(str(value))}</td></tr>'
                   for vi, en, value in _facts(status))
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="15">'
        f'<title>{e(status["device_id"])}: trạng thái</title><style>{_STYLE}</style></head>'
        f'<body><h1>{e(status["device_id"])}<span class="en">{e(status["role"])}</span></h1>'
        f'<div class="verdict {tone}">{e(status["verdict_vi"])}'
        f'<span class="en">{e(status["verdict"])}</span></div><ul>{checks}</ul>'
        f'<table>{rows}</table><p class="en">Trang tự tải lại sau 15 giây · '
        'reloads every 15 s · <a href="/status.json">JSON</a></p></body></html>')


def _facts(status: dict[str, Any]) -> list[tuple[str, str, Any]]:
    link = status["link"]
    lost = link.get("last_disconnect")
    return [
        ("Phiên bản phần mềm", "Software version", status["sw"]),
        ("Thời gian chạy", "Uptime", _duration(status["uptime_s"])),
        ("Đồng hồ", "Clock", "đã đồng bộ / synchronised" if status["clock_synced"]
         else "CHƯA đồng bộ / NOT synchronised"),
        ("Sự kiện chờ gửi", "Events waiting", status["outbox_depth"]),
        ("Kết nối lần cuối", "Last connected", _when(link.get("connected_at"))),
        ("Số lần kết nối lại", "Reconnects", link["reconnects"]),
        ("Mất kết nối lần cuối", "Last disconnect",
         f'{_when(lost["at"])}: {lost["reason"]}' if lost else "–"),
        ("Kiểm tra lúc", "Checked at", _when(status["checked_at"])),
    ]


def _when(ts: str | None) -> str:
    return local_time(parse_ts(ts).timestamp()) if ts else "chưa / never"


def _duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    return (f"{days} ngày " if days else "") + f"{hours} giờ {minutes} phút" + (
        f" / {days} d {hours} h {minutes} min" if days else f" / {hours} h {minutes} min")
