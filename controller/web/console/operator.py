"""The radio operator's pages: the audio library, broadcasts (list, scheduling form, week
view), emergencies with each speaker's live state, receipts, volumes and quiet hours.

Pages read through the domain (the same functions the API calls) and render HTML;
their forms change state by calling the JSON API (``/api/v1/...``) from
``/static/console/operator.js`` with the session's CSRF token, so every check and
every refusal is the API's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from controller.access.roles import OPERATOR, Caller
from controller.broadcasts import audio_library, items, receipts
from controller.broadcasts.schedule import TIMEZONE, parse_start
from controller.db.connection import ReaderPool
from controller.errors import ControllerError, NotFound, _t
from controller.fleet import registry
from controller.web.auth import allow, require_token
from controller.web.console.render import N_, PAGE, MenuItem, add_to_menu, render
from controller.web.deps import RowIdPath, Services, readers, services
from wire.messages import format_ts, utc_now
from wire.speaker import CUT_SHORT, PLAYED, SKIPPED

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])

add_to_menu(
    MenuItem("/audio", N_("Audio library"), (OPERATOR,), order=10),
    MenuItem("/broadcasts", N_("Broadcasts"), (OPERATOR,), order=11),
    MenuItem("/emergency", N_("Emergency"), (OPERATOR,), order=12),
    MenuItem("/speakers", N_("Volumes and quiet hours"), (OPERATOR,), order=14),
)

#: Words shown from data on these pages, translated in the templates.
VOCABULARY = (
    N_("played"), N_("cut_short"), N_("skipped"), N_("no_receipt"),
    N_("waiting"), N_("acknowledged"), N_("playing"), N_("done"), N_("failed"),
    N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"),
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RECEIPT_COLUMNS = 14  # occurrences shown in the receipts grid, newest last
ZONE = ZoneInfo(TIMEZONE)


# -- audio library -------------------------------------------------------------------------

@router.get("/audio", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def audio_page(request: Request, caller: Caller = Depends(require_token),
               pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        rows = audio_library.list_audio(db)
    return render(request, "operator_audio.html", caller=caller, audio=rows)


@router.get("/audio/{id}/file", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=FileResponse)
def audio_file(id: RowIdPath, pool: ReaderPool = Depends(readers),
               svc: Services = Depends(services)) -> Response:
    """The normalised rendition, for the page's player (the API's file route wants a
    device's credentials or a bearer token; this one the signed-in operator's session)."""
    with pool.connection() as db:
        record = audio_library.get_audio(db, id)
    path = svc.audio_library.rendition_path(record["sha256"])
    if not path.exists():
        raise NotFound(_t("no audio file for {id}"), id=id)
    return FileResponse(path, media_type="audio/wav",
                        headers={"ETag": f'"{record["sha256"]}"', "Cache-Control": "private"})


# -- broadcasts: list, form, week ------------------------------------------------------------

@router.get("/broadcasts", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def broadcasts_page(request: Request, week: str | None = None, month: str | None = None,
                    caller: Caller = Depends(require_token),
                    pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    """The list, the scheduling form and a calendar: the week of ``week`` (any day of it),
    or with ``month`` (``YYYY-MM``) the weeks that month spans."""
    now = utc_now()
    first = _first_of_month(month, now) if month is not None else None
    monday = _monday(week, now) if first is None else first - dt.timedelta(
        days=first.weekday())
    if first is None:
        count, prev, nxt = 7, monday - dt.timedelta(days=7), monday + dt.timedelta(days=7)
    else:
        after = (first + dt.timedelta(days=32)).replace(day=1)
        count = ((after - monday).days + 6) // 7 * 7
        prev, nxt = (first - dt.timedelta(days=1)).replace(day=1), after
    with pool.connection() as db:
        listed = [{**b, "next": _next_start(db, b, now)} for b in items.active_broadcasts(db)]
        days = week_view(db, monday, count)
        context = {"audio": audio_library.list_audio(db), **_targets(db)}
    for day in days:
        day["outside"] = first is not None and day["date"].month != first.month
    today = now.astimezone(ZONE)
    return render(request, "operator_broadcasts.html", caller=caller, broadcasts=listed,
                  days=days, monday=monday, month=first,
                  prev=prev.isoformat()[:7] if first else prev.isoformat(),
                  next=nxt.isoformat()[:7] if first else nxt.isoformat(),
                  this_month=today.strftime("%Y-%m"),
                  start_default=(today + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:00"),
                  **context)


def _first_of_month(month: str, now: dt.datetime) -> dt.date:
    """The first day of ``YYYY-MM`` (this month's if it is not one)."""
    try:
        return dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        return now.astimezone(ZONE).date().replace(day=1)


def _monday(week: str | None, now: dt.datetime) -> dt.date:
    try:
        day = dt.date.fromisoformat(week) if week else now.astimezone(ZONE).date()
    except ValueError:
        day = now.astimezone(ZONE).date()
    return day - dt.timedelta(days=day.weekday())


def _next_start(db: Any, b: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    timing = items.timing_of(db, b, TIMEZONE)
    return next(iter(timing.starts(now, now + dt.timedelta(days=3660))), None)


def week_view(db: Any, monday: dt.date, count: int = 7) -> list[dict[str, Any]]:
    """``count`` days from ``monday`` (local), each with the occurrences of active items."""
    begin = dt.datetime.combine(monday, dt.time(), ZONE)
    days: list[dict[str, Any]] = [{"date": monday + dt.timedelta(days=i),
                                   "name": WEEKDAYS[i % 7], "items": []} for i in range(count)]
    for b in items.active_broadcasts(db):
        timing = items.timing_of(db, b, TIMEZONE)
        for start in timing.starts(begin, begin + dt.timedelta(days=count)):
            local = start.astimezone(ZONE)
            if local < begin:
                continue  # one still playing from the week before
            index = (local.date() - monday).days
            if 0 <= index < count:
                days[index]["items"].append({"time": local.strftime("%H:%M"), "id": b["id"],
                                           "title": b["title"], "level": b["level"]})
    for day in days:
        day["items"].sort(key=lambda o: o["time"])
    return days


def _targets(db: Any) -> dict[str, Any]:
    """The speakers a form may target, and their hamlets."""
    speakers = [d for d in registry.list_devices(db, status="approved")
                if d["role"] == "speaker"]
    return {"speakers": speakers, "hamlets": sorted({d["hamlet"] for d in speakers
                                                     if d["hamlet"]})}


# -- receipts ----------------------------------------------------------------------------------

@router.get("/broadcasts/{id}/receipts", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def receipts_page(request: Request, id: RowIdPath, caller: Caller = Depends(require_token),
                  pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        broadcast = items.get_broadcast(db, id)
        occurrences = receipts.receipts(db, id)[-RECEIPT_COLUMNS:]
    return render(request, "operator_receipts.html", caller=caller, broadcast=broadcast,
                  **receipt_grid(occurrences))


def receipt_grid(occurrences: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of (hamlet, speaker), one cell per occurrence: the receipt or what is missing."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    rows: set[tuple[str, str]] = set()
    for occ in occurrences:
        for s in occ["speakers"]:
            row = (s["hamlet"] or "—", s["device"])
            rows.add(row)
            cells[(row[1], occ["occurrence"])] = s
    return {"occurrences": occurrences, "rows": sorted(rows), "cells": cells}


# -- emergencies -------------------------------------------------------------------------------

@router.get("/emergency", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def emergency_page(request: Request, id: int | None = None,
                   caller: Caller = Depends(require_token),
                   pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        emergencies = [b for b in items.list_broadcasts(db, include_cancelled=True)
                       if b["level"] == "emergency"]
        active = [b for b in emergencies if b["status"] == "active"]
        shown = next((b for b in emergencies if b["id"] == id), None) if id else None
        shown = shown or (active[0] if active else None)
        states = speaker_states(db, shown) if shown else []
        context = {"audio": audio_library.list_audio(db), **_targets(db)}
    return render(request, "operator_emergency.html", caller=caller, shown=shown,
                  active=active, states=states, **context)


@router.get("/emergency/{id}/speakers", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def emergency_speakers(request: Request, id: RowIdPath,
                       caller: Caller = Depends(require_token),
                       pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    """Each target speaker's state now: an HTML fragment the page asks for every second."""
    with pool.connection() as db:
        broadcast = items.get_broadcast(db, id)
        states = speaker_states(db, broadcast)
    return render(request, "operator_emergency_speakers.html", shown=broadcast, states=states)


def speaker_states(db: Any, b: dict[str, Any], now: dt.datetime | None = None) -> list[
        dict[str, Any]]:
    """Per target speaker: ``waiting`` (its schedule not yet applied), ``acknowledged``
    (it reported applying the config that carries the item), ``playing`` (its telemetry,
    sent the moment it starts, names the occurrence), ``done`` (played) or ``failed``
    with the receipt's reason (skipped or cut short); ``cancelled`` for an item cancelled
    before it played."""
    now = now or utc_now()
    timing = items.timing_of(db, b, TIMEZONE)
    begin = parse_start(b["start"], TIMEZONE)
    started = list(timing.starts(begin, now + dt.timedelta(seconds=1)))
    latest = next((s for s in reversed(started) if s <= now), None)
    occurrence = items.occurrence_id(b["id"], latest) if latest else None
    got = {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT device, status, reason FROM playback_receipts WHERE broadcast_id = ?"
        " AND occurrence = ?", (b["id"], occurrence))} if occurrence else {}
    try:
        targets = items.resolve_targets(db, b["targets"])
    except ControllerError:
        targets = []
    devices = {d["id"]: d for d in registry.list_devices(db)}
    out = []
    for speaker in sorted(set(targets) | set(got)):
        device = devices.get(speaker, {})
        version = device.get("config_version") or {}
        acknowledged = (version.get("reported") is not None and version.get("desired") is not None
                        and version["reported"] >= version["desired"])
        reason = None
        if speaker in got:
            status, reason = got[speaker]
            state = "done" if status == PLAYED else "failed"
            if status not in (PLAYED, CUT_SHORT, SKIPPED):
                state = status
        elif b["status"] == "cancelled":
            state = "cancelled"
        elif occurrence and (device.get("telemetry") or {}).get("playing") == occurrence:
            state = "playing"  # the speaker says so (telemetry sent as it starts)
        elif acknowledged:
            state = "acknowledged"
        else:
            state = "waiting"
        out.append({"device": speaker, "hamlet": device.get("hamlet"),
                    "online": device.get("online", False), "state": state, "reason": reason,
                    "occurrence": format_ts(latest) if latest else None})
    return out


# -- volumes and quiet hours ---------------------------------------------------------------------

@router.get("/speakers", dependencies=[allow(OPERATOR)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def speakers_page(request: Request, caller: Caller = Depends(require_token),
                  pool: ReaderPool = Depends(readers),
                  svc: Services = Depends(services)) -> HTMLResponse:
    with pool.connection() as db:
        context = _targets(db)
        volumes = {d["id"]: items.speaker_volume(db, d["id"]) for d in context["speakers"]}
    quiet = [t.strftime("%H:%M") for t in svc.broadcasts.quiet_hours]
    return render(request, "operator_speakers.html", caller=caller, volumes=volumes,
                  quiet=quiet, **context)
