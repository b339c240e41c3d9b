"""The console's pages: sign-in, the dashboard, devices, users and the audit log.

Each page is a route like the API's, with its roles beside it (``allow``) and
``PAGE`` in its ``openapi_extra``, so the gate sends a stranger to
``/signin`` and refuses a role the page is not for. Handlers gather what the
domain gives (the same functions the API calls) and render a template in the
caller's language.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import pathlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from controller.access import audit, users
from controller.access.roles import LEADER, OPERATOR, TECHNICIAN, Caller
from controller.access.sessions import COOKIE, MAX_AGE_S
from controller.broadcasts import items
from controller.broadcasts.schedule import TIMEZONE
from controller.db.connection import ReaderPool
from controller.errors import ControllerError
from controller.fleet import registry
from controller.ratings import alerts, stats
from controller.web.auth import allow, require_token
from controller.web.console import i18n
from controller.web.deps import Services, readers, services
from controller.web.gate import BODY_LIMIT_KEY, PAGE_KEY, STREAMED_KEY
from wire.messages import format_ts, utc_now

TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"
PAGE = {PAGE_KEY: True}
EVERYONE = (OPERATOR, LEADER, TECHNICIAN)
#: Live alert streams open at once, and how long one lasts before the browser reconnects.
MAX_STREAMS = 32
STREAM_S = 600.0

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])
public = APIRouter(include_in_schema=False)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark, translate later")
    """Mark an English message for the catalogs; templates translate it when shown."""
    return message


#: Words shown from data (roles, statuses, levels), translated in the templates.
VOCABULARY = (
    N_("admin"), N_("operator"), N_("leader"), N_("technician"),
    N_("approved"), N_("pending"), N_("revoked"),
    N_("kiosk"), N_("speaker"), N_("camera"), N_("sim"),
    N_("normal"), N_("priority"), N_("emergency"), N_("active"), N_("cancelled"),
)


@dataclasses.dataclass(frozen=True)
class MenuItem:
    path: str
    label: str  # an English message id, translated in the template
    roles: tuple[str, ...]


#: The menu, in order; each signed-in person sees the items of their role (admins all).
MENU = (
    MenuItem("/", N_("Dashboard"), EVERYONE),
    MenuItem("/devices", N_("Devices"), (OPERATOR, TECHNICIAN)),
    MenuItem("/users", N_("Users"), ()),
    MenuItem("/audit", N_("Audit log"), ()),
)


def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = lambda v: format_decimal(v, locale=lang) if v is not None else "—"
    env.filters["percent"] = (lambda v: format_percent(v, format="#,##0.0%", locale=lang)
                              if v is not None else "—")
    env.filters["when"] = lambda v: _when(v, lang)
    return env


_ENVIRONMENTS = {lang: _environment(lang) for lang in i18n.LANGUAGES}


def _when(value: Any, lang: str) -> str:
    """A time (Unix seconds or a wire/ISO string) in the commune's zone, short."""
    if value in (None, ""):
        return "—"
    if isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(TIMEZONE))
    return format_datetime(moment, "dd/MM/yyyy HH:mm", tzinfo=ZoneInfo(TIMEZONE), locale=lang)


def render(request: Request, template: str, *, caller: Caller | None = None,
           status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` in the request's language, with the menu of ``caller``."""
    lang = i18n.choose(request.cookies.get(i18n.COOKIE))
    csrf = None
    if caller is not None:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            svc: Services = request.app.state.services
            with svc.readers.connection() as db:
                try:
                    csrf = svc.sessions.check(db, cookie)[1]
                except ControllerError:
                    csrf = None
    menu = [m for m in MENU if caller is not None and caller.may(m.roles)]
    html = _ENVIRONMENTS[lang].get_template(template).render(
        lang=lang, caller=caller, menu=menu, path=request.url.path, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status,
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": CSP})


#: Only the controller's own scripts, styles and images; no inline script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


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
                      error=str(exc))
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
    template = _ENVIRONMENTS[lang].get_template("alert_row.html")

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


# -- technicians and operators: devices -----------------------------------------------

@router.get("/devices", dependencies=[allow(OPERATOR, TECHNICIAN)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def devices(request: Request, caller: Caller = Depends(require_token),
            pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        rows = registry.list_devices(db)
    return render(request, "devices.html", caller=caller, devices=rows)


# -- the admin: users and the audit log --------------------------------------------------

@router.get("/users", dependencies=[allow()], openapi_extra=PAGE, response_class=HTMLResponse)
def users_page(request: Request, caller: Caller = Depends(require_token),
               pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        rows = users.list_users(db)
    return render(request, "users.html", caller=caller, users=rows)


@router.get("/audit", dependencies=[allow()], openapi_extra=PAGE, response_class=HTMLResponse)
def audit_page(request: Request, user: str | None = None,
               caller: Caller = Depends(require_token),
               pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        entries = audit.list_entries(db, user=user or None, limit=200)
    return render(request, "audit.html", caller=caller, entries=entries, user=user or "")

