"""Who is calling and what they may do: the bearer token and the route's roles,
both checked by the gate before any body is read.

Every protected route declares its roles next to it with :func:`allow`
(``dependencies=[allow(OPERATOR)]``); admins may do everything. The gate
(:mod:`controller.web.gate`) finds the :class:`Roles` among a route's
dependencies, checks the token with :class:`TokenCheck` and the role, and
refuses (401, 403) before reading the body; the dependencies themselves hand
the caller to the handler and describe the scheme in the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
import hmac
import http.cookies
import pathlib
import threading
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.access.roles import ADMIN, ROLES, Caller
from controller.access.sessions import COOKIE, CSRF_HEADER, Sessions
from controller.access.tokens import check_token
from controller.db.connection import connect
from controller.errors import Forbidden, Unauthorized, _t, text

bearer = HTTPBearer(scheme_name="bearer", auto_error=False,
                    description="An API token: `thanthien-controller token create NAME`")


def require_token(request: Request,
                  _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """The caller (checked by the gate)."""
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):
        raise Unauthorized(_t("missing 'Authorization: Bearer <token>' header"))
    return caller


class Roles:
    """A route's roles, as a dependency: refuses a caller whose role is not among them."""

    def __init__(self, roles: tuple[str, ...]):
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}")
        self.roles = roles

    def __call__(self, caller: Caller = Depends(require_token)) -> Caller:
        if not caller.may(self.roles):
            raise Forbidden(forbidden_message(caller, self.roles))
        return caller


def allow(*roles: str) -> Any:
    """``dependencies=[allow(LEADER, TECHNICIAN)]``: who may call a route (and admins)."""
    return Depends(Roles(roles))


def forbidden_message(caller: Caller, roles: tuple[str, ...]) -> str:
    return text(_t("{user} ({role}) may not do this: it needs {roles}"), user=caller.name,
                role=caller.role, roles=_either((*roles, ADMIN)))


def _either(names: tuple[str, ...]) -> str:
    """``a or b or c``, its "or" translated with the sentence."""
    if len(names) == 1:
        return names[0]
    return text(_t("{first} or {rest}"), first=names[0], rest=_either(names[1:]))


class TokenCheck:
    """Says who a request is: a bearer token, or else a session cookie (whose
    state-changing requests must carry the session's CSRF token).

    Called on the event loop for each request: one indexed lookup of a hash on a
    read connection of its own, so no thread hop and no wait for the pool.
    """

    def __init__(self, db_path: str | pathlib.Path, sessions: Sessions | None = None):
        self._db = connect(db_path, cache_mib=1)
        self._lock = threading.Lock()
        self.sessions = sessions

    def __call__(self, headers: dict[bytes, bytes], method: str = "GET") -> Caller:
        header = headers.get(b"authorization")
        cookie = _cookie(headers.get(b"cookie"))
        with self._lock:
            if header is not None or cookie is None or self.sessions is None:
                return check_token(self._db, header.decode("latin-1") if header else None)
            caller, csrf = self.sessions.check(self._db, cookie)
        if method not in SAFE_METHODS and not hmac.compare_digest(
                headers.get(CSRF_HEADER.encode(), b"").decode("latin-1"), csrf):
            raise Forbidden(_t("missing or wrong X-CSRF-Token for this session"))
        return dataclasses.replace(caller, csrf=csrf)

    def close(self) -> None:
        self._db.close()


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _cookie(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except http.cookies.CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None
