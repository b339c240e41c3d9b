"""The technicians' pages: devices and their health, approving and revoking, a device's
telemetry charts, commands and their results, screenshots, and the config editor.

Operators see the device list read-only (no buttons). Buttons post to the JSON API
(``/api/v1/...``) with htmx and the session's CSRF token; ``console/technician.js``
shows each answer (the API's reason when refused) and reloads the page where the
list changed. The config editor is a page route: it sends the device only the fields
the technician changed (a JSON merge patch), so what the roster pushed meanwhile
(a kiosk's desk and officers on duty) is kept.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from controller.access.roles import OPERATOR, TECHNICIAN, Caller
from controller.db.connection import ReaderPool
from controller.errors import ControllerError, message_of
from controller.fleet import commands, desired_config, enrolment, registry, sequence
from controller.web.auth import allow, require_token
from controller.web.console.render import N_, PAGE, MenuItem, add_to_menu, render
from controller.web.deps import Services, readers, services
from controller.web.errors import page_text
from wire.rating import CMD_RESTART, CMD_SCREENSHOT
from wire.speaker import CMD_RESYNC, CMD_STATUS, CMD_TEST_TONE

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])

add_to_menu(MenuItem("/devices", N_("Devices"), (OPERATOR, TECHNICIAN), order=60))

#: Telemetry points drawn per chart (the newest), and the charts: (field, label, unit).
HISTORY = 240
CHARTS = (
    ("cpu_temp_c", N_("CPU temperature"), "°C"),
    ("disk_free_mb", N_("Disk free"), "MB"),
    ("outbox_depth", N_("Outbox depth"), ""),
)
#: Commands offered per role (a screenshot has its own button on kiosks).
COMMANDS = {
    "kiosk": ("ping", CMD_RESTART),
    "speaker": (CMD_TEST_TONE, CMD_RESYNC, CMD_STATUS, "ping"),
}
DEFAULT_COMMANDS = ("ping", CMD_RESTART)
#: Command names as buttons show them.
COMMAND_LABELS = {
    "ping": N_("Ping"), CMD_RESTART: N_("Restart"), CMD_TEST_TONE: N_("Test tone"),
    CMD_RESYNC: N_("Re-sync"), CMD_STATUS: N_("Status"), CMD_SCREENSHOT: N_("Screenshot"),
}
#: Words of command statuses, translated in the templates.
STATUSES = (N_("sent"), N_("done"), N_("failed"), N_("expired"), N_("unknown"))
#: Roles a device may enrol as (the choices of the enrolment form).
ENROL_ROLES = ("kiosk", "speaker", "camera")


# -- the list ---------------------------------------------------------------------------

@router.get("/devices", dependencies=[allow(OPERATOR, TECHNICIAN)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def devices(request: Request, caller: Caller = Depends(require_token),
            pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    """Approved devices with their health (offline ones first, highlighted), pending
    devices to approve (with the serial of hardware that claimed an enrolment), revoked
    ones; for technicians, the forms putting devices into service (a card's import, an
    enrolment token) and the enrolment tokens not yet used up."""
    may_act = caller.may((TECHNICIAN,))
    with pool.connection() as db:
        rows = registry.list_devices(db)
        enrolments = enrolment.list_enrolments(db) if may_act else []
    approved = sorted((d for d in rows if d["status"] == "approved"),
                      key=lambda d: (d["online"], d["id"]))
    return render(request, "technician_devices.html", caller=caller,
                  approved=approved,
                  pending=[d for d in rows if d["status"] == "pending"],
                  revoked=[d for d in rows if d["status"] == "revoked"],
                  enrolments=enrolments, roles=ENROL_ROLES, may_act=may_act)


# -- one device --------------------------------------------------------------------------

@router.get("/devices/{id}", dependencies=[allow(TECHNICIAN)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def device_page(id: str, request: Request, caller: Caller = Depends(require_token),
                pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        device = registry.get_device(db, id)
        history = registry.telemetry_history(db, id, HISTORY)
        config = desired_config.get_desired(db, id)
        anomalies = sequence.anomalies(db, id, limit=20)
    text = json.dumps(config["config"], ensure_ascii=False, indent=2, sort_keys=True)
    return render(request, "technician_device.html", caller=caller, device=device,
                  sequence=anomalies,
                  charts=[chart(history, field, label, unit) for field, label, unit in CHARTS],
                  commands=COMMANDS.get(device["role"] or "", DEFAULT_COMMANDS),
                  labels=COMMAND_LABELS, config=config, config_text=text)


@router.get("/devices/{id}/live", dependencies=[allow(TECHNICIAN)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def device_live(id: str, request: Request, caller: Caller = Depends(require_token),
                pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    """The part of the device page htmx reloads every few seconds: the commands and
    their results, the latest screenshot."""
    with pool.connection() as db:
        registry.get_device(db, id)
        sent = commands.list_commands(db, id, limit=20)
        shot = db.execute("SELECT max(received) FROM screenshots WHERE device = ?"
                          " AND png IS NOT NULL", (id,)).fetchone()[0]
    for c in sent:
        c["result_text"] = (json.dumps(c["result"], ensure_ascii=False)[:300]
                            if c["result"] is not None else "")
    return render(request, "technician_live.html", device_id=id, commands=sent,
                  screenshot=shot, labels=COMMAND_LABELS)


@router.post("/devices/{id}/config", dependencies=[allow(TECHNICIAN)],
             openapi_extra=PAGE,
             response_class=HTMLResponse)
async def edit_config(id: str, request: Request,
                      svc: Services = Depends(services)) -> HTMLResponse:
    """The editor's save: ``original`` (the config as the page showed it) and ``config``
    (as edited), both JSON text; only their difference is applied (a merge patch), so
    fields the technician did not touch keep whatever they hold now."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    patch: dict[str, Any] = {}
    try:
        if not isinstance(body, dict):
            raise _Refused(N_("The form could not be read."))
        before = _object(body.get("original"))
        after = _object(body.get("config"))
        patch = desired_config.diff(before, after)
        if not patch:
            return _outcome(request, N_("Nothing changed."), ok=True)
        version, _ = await _run(svc, id, patch)
    except _Refused as exc:
        return _outcome(request, exc.message, ok=False, detail=exc.detail)
    except ControllerError as exc:
        return _outcome(request, N_("Refused:"), ok=False,
                        detail=page_text(request, message_of(exc)))
    return _outcome(request, N_("Saved: version %(version)s."), ok=True,
                    version=version, fields=sorted(patch))


class _Refused(Exception):
    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message, self.detail = message, detail


async def _run(svc: Services, device_id: str, patch: dict[str, Any]) -> tuple[int, Any]:
    return await run_in_threadpool(svc.desired_config.patch, device_id, patch)


def _object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise _Refused(N_("The form could not be read."))
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _Refused(N_("This is not valid JSON:"), str(exc)) from None
    if not isinstance(value, dict):
        raise _Refused(N_("The config must be a JSON object ({...})."))
    return value


def _outcome(request: Request, message: str, *, ok: bool, detail: str = "",
             **context: Any) -> HTMLResponse:
    return render(request, "technician_outcome.html", message=message, ok=ok, detail=detail,
                  **context)


# -- charts -------------------------------------------------------------------------------

WIDTH, HEIGHT, PAD = 600, 120, 6


def chart(history: list[dict[str, Any]], field: str, label: str, unit: str) -> dict[str, Any]:
    """An inline-SVG line chart of ``field`` over ``history`` (newest first, as
    :func:`registry.telemetry_history` gives it): the polyline's points, the range."""
    points = [(h["received"], float(h[field])) for h in reversed(history)
              if isinstance(h.get(field), int | float) and not isinstance(h.get(field), bool)]
    out: dict[str, Any] = {"field": field, "label": label, "unit": unit, "count": len(points),
                           "width": WIDTH, "height": HEIGHT, "points": ""}
    if not points:
        return out
    t0, t1 = points[0][0], points[-1][0]
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span_t = (t1 - t0) or 1.0
    span_v = (high - low) or 1.0

    def xy(t: float, v: float) -> str:
        x = PAD + (t - t0) / span_t * (WIDTH - 2 * PAD) if t1 != t0 else WIDTH / 2
        y = HEIGHT - PAD - (v - low) / span_v * (HEIGHT - 2 * PAD) if high != low \
            else HEIGHT / 2
        return f"{x:.1f},{y:.1f}"

    out.update(points=" ".join(xy(t, v) for t, v in points), low=low, high=high,
               last=values[-1], since=t0, until=t1)
    return out
