"""Who is calling: the bearer token, checked by the gate before any body is read.

The gate (:mod:`controller.web.gate`) calls :class:`TokenCheck` for every
route that depends on :func:`require_token`; the dependency itself only
hands the checked name to the handler and puts the bearer scheme in the
OpenAPI document. Roles per route come with issue #6.
"""

from __future__ import annotations

import pathlib
import threading

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.access.tokens import check_token
from controller.db.connection import connect
from controller.errors import Unauthorized

bearer = HTTPBearer(scheme_name="bearer", auto_error=False,
                    description="An API token: `thanthien-controller token create NAME`")


def require_token(request: Request,
                  _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """The name of the caller's token (checked by the gate)."""
    user = request.scope.get("state", {}).get("user")
    if user is None:
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    return str(user)


class TokenCheck:
    """Checks ``Authorization: Bearer`` headers on one read connection of its own.

    Called on the event loop for each request: one indexed lookup of a hash,
    so no thread hop; its own connection so that it never waits for the pool.
    """

    def __init__(self, db_path: str | pathlib.Path):
        self._db = connect(db_path, cache_mib=1)
        self._lock = threading.Lock()

    def __call__(self, header: str | None) -> str:
        with self._lock:
            return check_token(self._db, header)

    def close(self) -> None:
        self._db.close()
