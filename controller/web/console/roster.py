"""The leaders' page of officers, desks and the duty roster, with the officers' photos.

One page (``/roster``): the officers with their photo, title and public phone; the
desks with their kiosk; a desk × day table of a week's shifts (from today by default).
Its forms call the JSON API (``/api/v1/officers``, ``/api/v1/desks``, the photo route,
``DELETE /api/v1/roster/{id}``) from ``console/roster.js`` with the session's CSRF
token, so every check and refusal is the API's own. A shift is entered in the commune's
local time (a day, a start and an end time): ``POST /roster/shifts`` turns it into the
API's UTC times and adds it through the same service as ``POST /api/v1/roster``; every
change reaches the desk's kiosk config (``controller.ratings.roster``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from controller.access.roles import LEADER, Caller
from controller.broadcasts.schedule import TIMEZONE
from controller.db.connection import ReaderPool
from controller.errors import ControllerError, _t, message_of, text
from controller.fleet import registry
from controller.ratings import roster
from controller.web.auth import allow, require_token
from controller.web.console.render import N_, PAGE, MenuItem, add_to_menu, render
from controller.web.deps import Services, readers, services
from controller.web.errors import answer
from wire.messages import format_ts, parse_ts

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])

add_to_menu(MenuItem("/roster", N_("Officers and roster"), (LEADER,), order=45))

ZONE = ZoneInfo(TIMEZONE)
DAYS = 7  # days of the roster table
#: Weekday names as the table's head shows them (Monday first), translated in the template.
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


@router.get("/roster", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def roster_page(request: Request, start: str | None = None,
                caller: Caller = Depends(require_token),
                pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    """Officers, desks, and the shifts of ``DAYS`` days from ``start`` (a local day,
    today by default) as a desk × day table."""
    today = dt.datetime.now(ZONE).date()
    error = None
    try:
        first = dt.date.fromisoformat(start) if start else today
    except ValueError:
        first, error = today, N_("This is not a day (YYYY-MM-DD); today's week is shown.")
    days = [first + dt.timedelta(days=i) for i in range(DAYS)]
    with pool.connection() as db:
        officers = _officers(db)
        desks = roster.list_desks(db)
        kiosks = [d for d in registry.list_devices(db)
                  if d["role"] == "kiosk" and d["status"] == "approved"]
        shifts = _shifts(db, days[0], days[-1] + dt.timedelta(days=1))
    grid: dict[tuple[str, dt.date], list[dict[str, Any]]] = {
        (s["desk"], s["day"]): [] for s in shifts}
    for s in shifts:
        grid[(s["desk"], s["day"])].append(s)
    rows = [{"desk": d, "cells": [grid.get((d["id"], day), []) for day in days]}
            for d in desks]
    return render(request, "roster_page.html", caller=caller, officers=officers,
                  desks=desks, kiosks=kiosks, rows=rows,
                  days=[{"date": day, "weekday": WEEKDAYS[day.weekday()],
                         "label": day.strftime("%d/%m")} for day in days],
                  previous=(first - dt.timedelta(days=DAYS)).isoformat(),
                  next=(first + dt.timedelta(days=DAYS)).isoformat(),
                  today=today.isoformat(), first=first.isoformat(), error=error,
                  max_photo=roster.MAX_PHOTO)


def _officers(db: Any) -> list[dict[str, Any]]:
    """The officers (by name) with the SHA-256 of their photo, if any."""
    photos = dict(db.execute("SELECT officer, sha256 FROM officer_photos").fetchall())
    return [{**o, "photo_sha256": photos.get(o["id"])} for o in roster.list_officers(db)]


def _shifts(db: Any, first: dt.date, after: dt.date) -> list[dict[str, Any]]:
    """Shifts overlapping the local days [first, after), each with the local day it
    starts on (clamped to ``first``), its local start and end times and the officer's
    name."""
    since, until = (format_ts(dt.datetime.combine(d, dt.time(), ZONE)) for d in (first, after))
    rows = db.execute(
        "SELECT r.id, r.desk, r.officer, r.start, r.end, o.name FROM roster r"
        " JOIN officers o ON o.id = r.officer WHERE r.end > ? AND r.start < ?"
        " ORDER BY r.start", (since, until)).fetchall()
    out = []
    for shift_id, desk, officer, start, end, name in rows:
        begin, finish = (parse_ts(t).astimezone(ZONE) for t in (start, end))
        out.append({"id": shift_id, "desk": desk, "officer": officer, "name": name,
                    "day": max(begin.date(), first), "start": begin.strftime("%H:%M"),
                    "end": finish.strftime("%H:%M"),
                    "end_day": finish.date() if finish.date() != begin.date() else None})
    return out


@router.post("/roster/shifts", dependencies=[allow(LEADER)], openapi_extra=PAGE)
async def add_shift(request: Request, svc: Services = Depends(services)) -> Response:
    """The shift form (JSON: desk, officer, a local ``day`` YYYY-MM-DD, ``start`` and
    ``end`` HH:MM in the commune's time) as the body of ``POST /api/v1/roster``.
    An end before the start is the next day's (a shift across midnight)."""
    try:
        form = await request.json()
    except ValueError:
        form = None
    if not isinstance(form, dict):
        return answer(request, 400, text(_t("expected the shift form as JSON")))
    try:
        day = dt.date.fromisoformat(str(form.get("day") or ""))
        start, end = (dt.time.fromisoformat(str(form.get(k) or "")) for k in ("start", "end"))
    except ValueError:
        return answer(request, 400, text(_t("expected a day (YYYY-MM-DD) and start and end"
                                            " times (HH:MM)")))
    begin = dt.datetime.combine(day, start, ZONE)
    finish = dt.datetime.combine(day + dt.timedelta(days=1 if end < start else 0), end, ZONE)
    body = {"desk": form.get("desk"), "officer": form.get("officer"),
            "start": format_ts(begin), "end": format_ts(finish)}
    try:
        shift = await run_in_threadpool(svc.roster.add_shift, body)
    except ControllerError as exc:
        return answer(request, 400, message_of(exc))
    return JSONResponse(shift, status_code=201)
