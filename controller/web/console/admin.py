"""The admin's pages: users and their roles, API tokens, the audit log with filters.

Forms post to the admin's JSON API (``/api/v1/users``, ``/api/v1/tokens``) with htmx
and the session's CSRF token; ``console/technician.js`` shows the API's reason when
it refuses, shows a new token once, and reloads the lists.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from controller.access import audit, tokens, users
from controller.access.roles import ROLES, Caller
from controller.broadcasts.schedule import TIMEZONE
from controller.db.connection import ReaderPool
from controller.web.auth import allow, require_token
from controller.web.console.render import N_, PAGE, MenuItem, add_to_menu, render
from controller.web.deps import readers

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])

add_to_menu(
    MenuItem("/users", N_("Users"), (), order=90),
    MenuItem("/audit", N_("Audit log"), (), order=91),
    MenuItem("/tokens", N_("API tokens"), (), order=92),
)

#: Entries shown on the audit page, and how far back the method filter looks.
AUDIT_SHOWN = 200
AUDIT_SCANNED = 5000
METHODS = ("POST", "PUT", "PATCH", "DELETE")


@router.get("/users", dependencies=[allow()], openapi_extra=PAGE, response_class=HTMLResponse)
def users_page(request: Request, caller: Caller = Depends(require_token),
               pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        rows = users.list_users(db)
    return render(request, "admin_users.html", caller=caller, users=rows, roles=ROLES,
                  min_password=users.MIN_PASSWORD)


@router.get("/tokens", dependencies=[allow()], openapi_extra=PAGE,
            response_class=HTMLResponse)
def tokens_page(request: Request, caller: Caller = Depends(require_token),
                pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        rows = tokens.list_tokens(db)
    return render(request, "admin_tokens.html", caller=caller, tokens=rows, roles=ROLES)


@router.get("/audit", dependencies=[allow()], openapi_extra=PAGE, response_class=HTMLResponse)
def audit_page(request: Request, user: str | None = None, since: str | None = None,
               method: str | None = None, caller: Caller = Depends(require_token),
               pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    """The audit log, newest first, by user, since a day (the commune's midnight) and by
    method."""
    start = _day(since)
    chosen = method if method in METHODS else ""
    with pool.connection() as db:
        entries = audit.list_entries(db, user=user or None, since=start,
                                     limit=AUDIT_SCANNED if chosen else AUDIT_SHOWN)
    if chosen:
        entries = [e for e in entries if e["method"] == chosen][:AUDIT_SHOWN]
    return render(request, "admin_audit.html", caller=caller, entries=entries,
                  user=user or "", since=since if start is not None else "",
                  method=chosen, methods=METHODS, bad_since=bool(since) and start is None)


def _day(text: str | None) -> float | None:
    """A YYYY-MM-DD date's midnight in the commune's zone, as Unix seconds."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), ZoneInfo(TIMEZONE)).timestamp()

