"""The console's pages: sign-in and the dashboard (devices: ``technician``; users,
tokens and the audit log: ``admin``).

Each page is a route like the API's, with its roles beside it (``allow``) and
``PAGE`` in its ``openapi_extra``, so the gate sends a stranger to
``/signin`` and refuses a role the page is not for. Handlers gather what the
domain gives (the same functions the API calls) and render a template in the
caller's language.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from controller.access.roles import LEADER, OPERATOR, TECHNICIAN, Caller
from controller.access.sessions import COOKIE, MAX_AGE_S
from controller.broadcasts import items
from controller.broadcasts.schedule import TIMEZONE
from controller.db.connection import ReaderPool
from controller.errors import ControllerError, message_of
from controller.fleet import registry
from controller.ratings import alerts, stats
from controller.web.auth import allow, require_token
from controller.web.console import i18n
from controller.web.console.render import (
    ENVIRONMENTS,
    EVERYONE,
    N_,
    PAGE,
    MenuItem,
    add_to_menu,
    render,
)
from controller.web.deps import Services, readers, services
from controller.web.errors import page_text
from controller.web.gate import BODY_LIMIT_KEY, STREAMED_KEY
from wire.messages import format_ts, utc_now

#: Live alert streams open at once, and how long one lasts before the browser reconnects.
MAX_STREAMS = 32
STREAM_S = 600.0

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])
public = APIRouter(include_in_schema=False)

add_to_menu(
    MenuItem("/", N_("Dashboard"), EVERYONE, order=0),
)


# -- signing in and out ---------------------------------------------------------------

@public.get("/signin", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "signin.html", next=_local(next))


@public.post("/signin", openapi_extra={STREAMED_KEY: True, BODY_LIMIT_KEY: 4096})
async def sign_in(request: Request) -> Response:
    """The sign-in form (works without JavaScript): a session cookie, then the page
    asked for; a wrong password shows the form again with the reason."""
    form = await request.form(max_files=0, max_fields=3, max_part_size=1024)
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    target = _local(str(form.get("next") or "/"))
    svc: Services = request.app.state.services
    address = request.client.host if request.client else None

    def login() -> tuple[str, str, Caller]:
        with svc.readers.connection() as db:
            return svc.sessions.login(db, name, password, address)
    try:
        cookie, _, _ = await run_in_threadpool(login)
    except ControllerError as exc:
        status = 503 if type(exc).__name__ == "LockedOut" else 401
        return render(request, "signin.html", status=status, next=target, name=name,
                      error=page_text(request, message_of(exc)))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https", max_age=int(MAX_AGE_S))
    return response


@router.post("/signout", dependencies=[allow(*EVERYONE)], openapi_extra=PAGE)
def sign_out(request: Request, svc: Services = Depends(services)) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        svc.sessions.logout(cookie)
    response = Response(status_code=204, headers={"HX-Redirect": "/signin"})
    response.delete_cookie(COOKIE, path="/")
    return response


@public.get("/lang/{lang}")
def switch_language(lang: str, next: str = "/") -> Response:
    """The language switch: a preference kept in a cookie, not a change of state."""
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(i18n.COOKIE, i18n.choose(lang), samesite="lax", path="/",
                        max_age=365 * 86400)
    return response


def _local(target: str) -> str:
    """Only a path on this controller (an open redirect would help a phishing page)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


# -- the dashboard ----------------------------------------------------------------------

@router.get("/", dependencies=[allow(*EVERYONE)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def dashboard(request: Request, caller: Caller = Depends(require_token),
              pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        context = dashboard_data(db, caller)
    return render(request, "dashboard.html", caller=caller, **context)


def dashboard_data(db: Any, caller: Caller, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the dashboard shows ``caller``: only the parts of their role."""
    now = now or utc_now()
    local = now.astimezone(ZoneInfo(TIMEZONE))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    context: dict[str, Any] = {}
    if caller.may((LEADER,)):
        today = stats.rating_stats(db, by=[], since=format_ts(midnight))
        context["today"] = today
        context["alerts"] = alerts.list_alerts(db, since=format_ts(now - dt.timedelta(days=1)))
    if caller.may((OPERATOR, TECHNICIAN)):
        devices = registry.list_devices(db, status="approved")
        context["offline"] = [d for d in devices if not d["online"]]
        context["device_count"] = len(devices)
    if caller.may((OPERATOR,)):
        context["upcoming"] = _upcoming(db, now)
        emergencies = [b for b in items.list_broadcasts(db, include_cancelled=True)
                       if b["level"] == "emergency"]
        context["last_emergency"] = max(emergencies, key=lambda b: b["created"], default=None)
    return context


def _upcoming(db: Any, now: dt.datetime, limit: int = 5) -> list[dict[str, Any]]:
    """The next occurrences of active broadcasts, within a week."""
    found = []
    for b in items.active_broadcasts(db):
        timing = items.timing_of(db, b, TIMEZONE)
        for start in timing.starts(now, now + dt.timedelta(days=7)):
            if start >= now:
                found.append({"start": start, "title": b["title"], "level": b["level"]})
                break
    return sorted(found, key=lambda o: o["start"])[:limit]


# -- live alerts --------------------------------------------------------------------------

_streams = {"open": 0}


@router.get("/events/alerts", dependencies=[allow(LEADER)], openapi_extra=PAGE)
async def alert_stream(request: Request, pool: ReaderPool = Depends(readers)) -> Response:
    """New alerts as they are raised (server-sent events of HTML rows for htmx); at most
    :data:`MAX_STREAMS` at once, each closed after :data:`STREAM_S` (the browser
    reconnects)."""
    if _streams["open"] >= MAX_STREAMS:
        return Response("too many live views open", status_code=503,
                        headers={"Retry-After": "30"})
    lang = i18n.choose(request.cookies.get(i18n.COOKIE))
    template = ENVIRONMENTS[lang].get_template("alert_row.html")

    def newest() -> int:
        with pool.connection() as db:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0])

    def after(last: int) -> list[dict[str, Any]]:
        with pool.connection() as db:
            return [a for a in alerts.list_alerts(db) if a["id"] > last]

    last = await run_in_threadpool(newest)

    async def events() -> AsyncIterator[bytes]:
        nonlocal last
        _streams["open"] += 1
        try:
            yield b"retry: 5000\n\n"
            deadline = time.monotonic() + STREAM_S
            while time.monotonic() < deadline and not await request.is_disconnected():
                for alert in sorted(await run_in_threadpool(after, last), key=lambda a: a["id"]):
                    last = max(last, alert["id"])
                    html = template.render(alert=alert).replace("\n", " ")
                    yield f"event: alert\ndata: {html}\n\n".encode()
                await asyncio.sleep(1.0)
        finally:
            _streams["open"] -= 1

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
