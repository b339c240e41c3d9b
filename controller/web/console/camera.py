"""The leaders' camera page: footage held, clips to watch and download, the cameras at desks.

``/camera`` lists the holds (automatic ones after a dissatisfied rating, and those
made by hand) with their clip, a form to hold footage by hand, and which camera
watches which desk; ``/camera/clips/{hold}`` plays a verified clip and links its
archive. Buttons call the JSON API with htmx (``console/technician.js`` shows each
answer); the two forms post to page routes that turn the form into the service's
call (a form's fields are text, times the commune's). Watching and downloading go
through the API's routes, which write each viewing in the audit log.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from controller.access.roles import LEADER, Caller
from controller.cameras import clips, desks, holds
from controller.cameras.service import RATING_REASON
from controller.db.connection import ReaderPool
from controller.errors import ControllerError, _t, message_of, text
from controller.ratings import roster
from controller.web.auth import allow, require_token
from controller.web.console.render import N_, PAGE, MenuItem, add_to_menu, render
from controller.web.deps import Services, readers, services
from controller.web.errors import answer
from wire.footage import key_fingerprint

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])

add_to_menu(MenuItem("/camera", N_("Camera"), (LEADER,), order=36))

#: Holds listed at most (the newest).
MAX_LIST = 200
#: Words shown from data on these pages, translated in the templates (the first is
#: :data:`controller.cameras.service.RATING_REASON`, an automatic hold's reason).
VOCABULARY = (N_("dissatisfied rating"), N_("requested"), N_("waiting"), N_("held"), N_("released"),
              N_("expired"), N_("missing"), N_("uploading"), N_("received"), N_("verified"),
              N_("failed"), N_("deleted"))


@router.get("/camera", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def camera_page(request: Request, state: str | None = None,
                caller: Caller = Depends(require_token),
                pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    if state not in holds.STATES:
        state = None
    with pool.connection() as db:
        listed = holds.list_holds(db, state=state, limit=MAX_LIST)
        counts = dict(db.execute("SELECT state, count(*) FROM camera_holds GROUP BY state"))
        cameras = desks.list_cameras(db)
        desk_names = {d["id"]: d["name"] for d in roster.list_desks(db)}
        failed = {c["hold"]: c["problems"][:1] for c in clips.list_clips(
            db, state=clips.FAILED, limit=MAX_LIST)}
    for camera in cameras:
        camera["fingerprint"] = key_fingerprint(camera["public_key"]) if camera[
            "public_key"] else None
    return render(request, "camera.html", caller=caller, holds=listed, shown_state=state,
                  states=holds.STATES, counts=counts, total=sum(counts.values()),
                  limit=MAX_LIST, cameras=cameras, desks=desk_names, failed=failed,
                  active=holds.ACTIVE, rating_reason=RATING_REASON,
                  max_hours=holds.MAX_SPAN_S // 3600, retention_days=holds.RETENTION_DAYS)


@router.get("/camera/clips/{hold}", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def clip_page(request: Request, hold: str, caller: Caller = Depends(require_token),
              pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        clip = clips.get_clip(db, hold)
        desk_names = {d["id"]: d["name"] for d in roster.list_desks(db)}
    return render(request, "camera_clip.html", caller=caller, clip=clip, desks=desk_names,
                  rating_reason=RATING_REASON)


@router.post("/camera/holds", dependencies=[allow(LEADER)], openapi_extra=PAGE)
async def hold_by_hand(request: Request, caller: Caller = Depends(require_token),
                       svc: Services = Depends(services)) -> Response:
    """The form (JSON by htmx's json-enc, every field text): one camera or a desk's,
    local start and end, reason, days; made by the service ``POST /api/v1/camera/holds``
    calls."""
    form = await _form(request)
    if form is None:
        return answer(request, 400, text(_t("expected the hold form as JSON")))
    target = str(form.get("target") or "")
    kind, _, name = target.partition(":")
    body: dict[str, Any] = {"start": str(form.get("start") or ""),
                            "end": str(form.get("end") or ""),
                            "reason": str(form.get("reason") or "")}
    if kind in ("camera", "desk") and name:
        body[kind] = name
    days = str(form.get("days") or "").strip()
    try:
        if days:
            body["days"] = float(days)
    except ValueError:
        return answer(request, 400, text(_t("'days' {days!r}: expected a number"), days=days))
    try:
        assert svc.cameras is not None
        await run_in_threadpool(svc.cameras.create_holds, body, caller.name)
    except ControllerError as exc:
        return answer(request, 400, message_of(exc))
    return Response(status_code=204)


@router.post("/camera/desks", dependencies=[allow(LEADER)], openapi_extra=PAGE)
async def move_camera(request: Request, svc: Services = Depends(services)) -> Response:
    """The form: a camera and the desk it now watches (none: it leaves its desk)."""
    form = await _form(request)
    if form is None:
        return answer(request, 400, text(_t("expected the camera form as JSON")))
    try:
        assert svc.cameras is not None
        await run_in_threadpool(svc.cameras.move_camera, str(form.get("camera") or ""),
                                str(form.get("desk") or "") or None)
    except ControllerError as exc:
        return answer(request, 400, message_of(exc))
    return Response(status_code=204)


async def _form(request: Request) -> dict[str, Any] | None:
    try:
        form = await request.json()
    except ValueError:
        return None
    return form if isinstance(form, dict) else None
