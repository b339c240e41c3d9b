"""A small JSON-over-HTTP layer on the standard library's threading server.

Routes are declared once with their summary and parameters; the same list
serves requests and generates the OpenAPI description, so the two cannot
disagree. Library errors become JSON errors here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.errors import InvalidRequest, NotFound, Unauthorized

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20


@dataclasses.dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: Any
    body: bytes
    user: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"request body is not JSON: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        return body

    def flag(self, name: str) -> bool:
        value = self.query.get(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise InvalidRequest(f"query parameter {name}={value!r}: expected true or false")
        return value in ("true", "1")

    def integer(self, name: str, default: int, lo: int = 1, hi: int = 10_000) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidRequest(f"query parameter {name}={raw!r}: expected an integer") from None
        if not lo <= value <= hi:
            raise InvalidRequest(f"query parameter {name}={value}: expected {lo}..{hi}")
        return value


@dataclasses.dataclass
class Response:
    """A non-JSON answer (a file, an image, CSV): raw bytes and headers."""

    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


Handler = Callable[[Request], Any]
Authenticate = Callable[[str | None], str]


@dataclasses.dataclass
class Route:
    method: str
    template: str
    handler: Handler
    summary: str
    query: tuple[str, ...] = ()
    public: bool = False
    status: int = 200
    max_body: int = MAX_BODY

    def __post_init__(self) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        self.regex = re.compile(f"^{pattern}$")


class Router:
    """Matches requests to routes, checks auth, maps errors to statuses."""

    def __init__(self, authenticate: Authenticate, title: str, version: str):
        self.routes: list[Route] = []
        self.authenticate = authenticate
        self.title, self.version = title, version

    def add(self, method: str, template: str, summary: str, *, query: tuple[str, ...] = (),
            public: bool = False, status: int = 200,
            max_body: int = MAX_BODY) -> Callable[[Handler], Handler]:
        """Declare a route; ``max_body`` raises the 1 MiB body limit (uploads)."""
        def decorate(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, handler, summary, query, public, status,
                                     max_body))
            return handler
        return decorate

    def max_body(self, method: str, path: str) -> int:
        for route in self.routes:
            if route.method == method and route.regex.match(path):
                return route.max_body
        return MAX_BODY

    def dispatch(self, request: Request) -> tuple[int, Any]:
        allowed = False
        for route in self.routes:
            match = route.regex.match(request.path)
            if not match:
                continue
            allowed = True
            if route.method != request.method:
                continue
            request.params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            try:
                if not route.public:
                    request.user = self.authenticate(request.headers.get("Authorization"))
                return route.status, route.handler(request)
            except Unauthorized as exc:
                return 401, {"error": str(exc)}
            except NotFound as exc:
                return 404, {"error": str(exc)}
            except (InvalidRequest, ValueError) as exc:
                return 400, {"error": str(exc)}
        if allowed:
            return 405, {"error": f"method {request.method} not allowed on {request.path}"}
        return 404, {"error": f"no such endpoint {request.path}"}

    def openapi(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for route in self.routes:
            op: dict[str, Any] = {"summary": route.summary, "responses": {
                str(route.status): {"description": "OK"},
                "400": {"description": "invalid request; the body's 'error' says why"},
            }}
            params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                      for n in re.findall(r"\{(\w+)\}", route.template)]
            params += [{"name": n, "in": "query", "schema": {"type": "string"}}
                       for n in route.query]
            if params:
                op["parameters"] = params
            if not route.public:
                op["security"] = [{"bearer": []}]
                op["responses"]["401"] = {"description": "missing or unknown token"}
            if route.method in ("POST", "PUT"):
                op["requestBody"] = {"content": {"application/json": {"schema": {
                    "type": "object"}}}}
            paths.setdefault(route.template, {})[route.method.lower()] = op
        return {
            "openapi": "3.0.3",
            "info": {"title": self.title, "version": self.version},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "paths": paths,
        }


class HttpServer:
    """Serves a :class:`Router` on a thread; ``port=0`` picks a free port."""

    def __init__(self, router: Router, host: str = "127.0.0.1", port: int = 8080):
        handler = _handler_class(router)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


def _handler_class(router: Router) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "thanthien"

        def _serve(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            limit = router.max_body(self.command, path)
            if not 0 <= length <= limit:
                self._send(413, {"error": f"request body of {length} bytes: the limit is {limit}"})
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            query = dict(urllib.parse.parse_qsl(url.query))
            request = Request(self.command, path, {}, query, self.headers, body)
            try:
                status, payload = router.dispatch(request)
            except Exception:
                log.exception("%s %s failed", self.command, self.path)
                status, payload = 500, {"error": "internal error; see the controller log"}
            self._send(status, payload)

        def _send(self, status: int, payload: Any) -> None:
            headers: dict[str, str] = {}
            if isinstance(payload, Response):
                status = payload.status if status == 200 else status
                data, content_type, headers = payload.body, payload.content_type, payload.headers
            else:
                data = json.dumps(payload, ensure_ascii=False).encode()
                content_type = "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
