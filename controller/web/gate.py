"""The gate every request passes before the app reads a byte of its body.

For the route a request matches, the gate knows (from the route itself, see
:func:`policy_of`) whether it needs a token and how large a body it takes.
In that order it:

1. refuses a declared ``Content-Length`` over the route's limit (413);
2. checks the bearer token of a route that needs one (401) and the caller's
   role against the route's (403), so a stranger cannot make the controller
   read an upload;
3. reads the body of an ordinary route itself, up to the limit and with a
   timeout per chunk (413, 408), so handlers never wait on the network, and
   hands it on as JSON (the API's only body type besides uploads); a
   streaming route (an upload) gets a ``receive`` with the same timeout and
   counts its own bytes;
4. gives every part of the response ``send_timeout`` seconds to be taken by
   the client, so a client that stops reading frees its file and task;
5. records every state-changing request (any method but GET, HEAD, OPTIONS),
   answered or refused, in the audit log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.errors import _t, message_of, text

log = logging.getLogger(__name__)

DEFAULT_BODY_LIMIT = 1 << 20
BODY_LIMIT_KEY = "x-body-limit"
STREAMED_KEY = "x-body-streamed"
#: A console page (HTML): a stranger is sent to the sign-in page, not answered 401.
PAGE_KEY = "x-console-page"
SIGN_IN_PATH = "/signin"

#: ``authenticate(request headers, method) -> caller`` (with ``.name``, ``.role`` and
#: ``.may(roles)``); raises PermissionError with a message if refused (a subclass
#: named ``Forbidden`` for a 403, any other for a 401).
Authenticate = Callable[[dict[bytes, bytes], str], Any]
#: ``audit(entry)``: record a state-changing request (who, what, when, where, answer).
Audit = Callable[[dict[str, Any]], None]
#: ``forbidden(caller, roles) -> message`` for a caller whose role is not allowed.
ForbiddenMessage = Callable[[Any, tuple[str, ...]], str]
#: ``error_body(request headers, message) -> JSON body`` of a refusal (its language).
ErrorBody = Callable[[dict[bytes, bytes], str], dict[str, str]]


def english_body(headers: dict[bytes, bytes], message: str) -> dict[str, str]:
    """The default refusal: ``{"error": "<message>"}`` (the app passes one that answers in
    the caller's language, :func:`controller.web.errors.gate_body`)."""
    return {"error": str(message)}


class BodyTimeout(Exception):
    """The client stopped sending its request body."""


class BodyTooLarge(Exception):
    """A streamed body went past its route's limit."""

    def __init__(self, limit: int):
        super().__init__(text(_t("request body over the limit of {limit} bytes"), limit=limit))
        self.limit = limit


@dataclasses.dataclass(frozen=True)
class Policy:
    public: bool
    body_limit: int = DEFAULT_BODY_LIMIT
    streamed: bool = False
    #: The roles the route allows besides admin; None: any signed-in caller.
    roles: tuple[str, ...] | None = None
    page: bool = False


def body_limit(limit: int, *, streamed: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes more than 1 MiB (documented in OpenAPI)."""
    return {BODY_LIMIT_KEY: limit, STREAMED_KEY: streamed}


def policy_of(route: APIRoute, token_dependency: Callable[..., Any]) -> Policy:
    """A route's policy: public unless ``token_dependency`` is among its dependencies."""
    extra = route.openapi_extra or {}
    return Policy(public=not _depends_on(route.dependant, token_dependency),
                  body_limit=int(extra.get(BODY_LIMIT_KEY, DEFAULT_BODY_LIMIT)),
                  streamed=bool(extra.get(STREAMED_KEY, False)),
                  roles=route_roles(route), page=bool(extra.get(PAGE_KEY, False)))


def route_roles(route: APIRoute) -> tuple[str, ...] | None:
    """The roles a route declares (its ``allow(...)`` dependency), or None."""
    found = [d.call.roles for d in _walk(route.dependant) if hasattr(d.call, "roles")]
    return tuple(found[0]) if found else None


def _walk(dependant: Any) -> list[Any]:
    return [x for d in dependant.dependencies for x in (d, *_walk(d))]


def _depends_on(dependant: Any, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


class Gate:
    """ASGI middleware applying each route's :class:`Policy`."""

    def __init__(self, app: ASGIApp, *, routes: list[Any], token_dependency: Callable[..., Any],
                 authenticate: Authenticate, forbidden: ForbiddenMessage,
                 audit: Audit | None = None, body_timeout: float = 30.0,
                 send_timeout: float = 60.0, error_body: ErrorBody = english_body):
        self.app = app
        self.error_body = error_body
        self.forbidden = forbidden
        self.audit = audit
        self.routes = routes
        self.token_dependency = token_dependency
        self.authenticate = authenticate
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self._policies: dict[int, Policy] = {}
        self._recent: dict[tuple[str, str], Policy | None] = {}

    def _policy(self, scope: Scope) -> Policy | None:
        key = (scope["method"], scope["path"])
        if key in self._recent:
            return self._recent[key]
        policy = self._match(scope)
        if len(self._recent) >= 4096:  # paths carry ids: remember the recent ones only
            self._recent.clear()
        self._recent[key] = policy
        return policy

    def _match(self, scope: Scope) -> Policy | None:
        for route in self.routes:
            if not isinstance(route, APIRoute):
                continue
            match, _ = route.matches(scope)
            if match is Match.FULL:
                policy = self._policies.get(id(route))
                if policy is None:
                    policy = self._policies[id(route)] = policy_of(route, self.token_dependency)
                return policy
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or self.audit is None:
            await self._gate(scope, receive, self._timed_send(send))
            return
        status = [0]

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._gate(scope, receive, self._timed_send(noting))
        finally:
            self._record(scope, status[0])

    def _record(self, scope: Scope, status: int) -> None:
        caller = scope.get("state", {}).get("caller")
        client = scope.get("client")
        assert self.audit is not None
        try:
            self.audit({"method": scope["method"], "path": scope["path"][:500],
                        "status": status, "user": getattr(caller, "name", None),
                        "role": getattr(caller, "role", None),
                        "address": client[0] if client else None})
        except Exception:
            log.exception("audit record failed")

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self._policy(scope)
        if policy is None:  # no such route: the router answers 404 or 405
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._check_length(headers.get(b"content-length"), policy)
        if refusal is None and not policy.public:
            refusal = self._check_caller(scope, headers, policy)
        if refusal is not None:
            if policy.page and refusal[0] == 401 and scope["method"] == "GET":
                await _redirect(send, f"{SIGN_IN_PATH}?next={quote(scope['path'])}")
            else:
                await _answer(send, refusal[0], self.error_body(headers, refusal[1]))
            return
        if policy.streamed:
            await self.app(scope, self._timed_receive(receive), send)
            return
        try:
            body = await self._read_body(receive, policy.body_limit)
        except BodyTimeout:
            await _answer(send, 408, self.error_body(headers, text(
                _t("request body not received within {seconds} s"), seconds=self.body_timeout)))
            return
        except BodyTooLarge as exc:
            await _answer(send, 413, self.error_body(headers, message_of(exc)))
            return
        if body:
            scope["headers"] = _as_json(scope["headers"])
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _check_length(raw: bytes | None, policy: Policy) -> tuple[int, str] | None:
        if raw is None:
            return None
        try:
            length = int(raw)
        except ValueError:
            return 400, text(_t("Content-Length {value!r}: expected a number of bytes"),
                             value=raw.decode("latin-1"))
        if length > policy.body_limit:
            return 413, text(_t("request body of {length} bytes: the limit is {limit}"),
                             length=length, limit=policy.body_limit)
        return None

    def _check_caller(self, scope: Scope, headers: dict[bytes, bytes],
                      policy: Policy) -> tuple[int, str] | None:
        try:
            caller = self.authenticate(headers, scope["method"])
        except PermissionError as exc:
            return (403 if type(exc).__name__ == "Forbidden" else 401), message_of(exc)
        scope.setdefault("state", {})["caller"] = caller
        if policy.roles is not None and not caller.may(policy.roles):
            return 403, self.forbidden(caller, policy.roles)
        return None

    async def _read_body(self, receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive_within(receive)
            if message["type"] != "http.request":
                return b"".join(chunks)  # the client went away; the handler will see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _receive_within(self, receive: Receive) -> Message:
        try:
            return await asyncio.wait_for(receive(), self.body_timeout)
        except TimeoutError:
            raise BodyTimeout() from None

    def _timed_receive(self, receive: Receive) -> Receive:
        async def timed() -> Message:
            return await self._receive_within(receive)
        return timed

    def _timed_send(self, send: Send) -> Send:
        async def timed(message: Message) -> None:
            await asyncio.wait_for(send(message), self.send_timeout)
        return timed


def _as_json(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Ordinary routes take JSON whatever Content-Type was sent: ``curl -d`` and
    urllib send form encoding by default, and the API has always read such bodies
    as JSON. (Routes taking raw bytes, such as photos, read them as they are.)"""
    kept = [(k, v) for k, v in headers if k != b"content-type"]
    return [*kept, (b"content-type", b"application/json")]


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _redirect(send: Callable[[Message], Awaitable[None]], location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _answer(send: Callable[[Message], Awaitable[None]], status: int,
                  content: dict[str, str]) -> None:
    body = json.dumps(content, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="thanthien"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
