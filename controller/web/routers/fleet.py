"""Devices: the registry, telemetry, commands, desired config, kiosk screenshots."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from controller.access.roles import LEADER, OPERATOR, TECHNICIAN, Caller
from controller.db.connection import ReaderPool
from controller.documents import reports
from controller.errors import InvalidRequest
from controller.fleet import (
    bundles,
    commands,
    desired_config,
    enrolment,
    ingest,
    presence,
    registry,
    sequence,
)
from controller.ratings import screenshots
from controller.web.auth import allow, require_token
from controller.web.deps import Services, readers, services
from controller.web.gate import body_limit
from controller.web.models import fleet as m
from provisioning.card import MAX_CARD_BYTES, CardError, DeviceCard

router = APIRouter(prefix="/api/v1", tags=["devices"], dependencies=[Depends(require_token)])
public = APIRouter(prefix="/api/v1", tags=["devices"])


@router.get("/devices", dependencies=[allow(OPERATOR, LEADER, TECHNICIAN)],
            response_model=list[m.Device],
            summary="Devices with online state and latest telemetry")
def list_devices(status: Literal["approved", "pending", "revoked"] | None = None,
                 pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return registry.list_devices(db, status=status)


@router.post("/devices", dependencies=[allow(TECHNICIAN)],
             response_model=m.DeviceApproved, status_code=201,
             summary="Register (approve) a device")
def add_device(body: m.DeviceCreate, svc: Services = Depends(services)) -> Any:
    return svc.registry.add(body.id, body.role, label=body.label, hamlet=body.hamlet)


@router.get("/devices/availability", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=m.Availability,
            summary="How much of [since, until) each approved device was online, and per "
                    "role (the figures of the model's report)")
def availability(
        since: str | None = Query(None, description="first day, e.g. 2026-01-01 (local "
                                                    "midnight), or an ISO 8601 time"),
        until: str | None = Query(None, description="the day after the last (exclusive)"),
        period: Literal["6-month", "9-month", "year"] | None = Query(
            None, description="instead of since/until: one of the plan's report periods"),
        year: int | None = Query(None, ge=2000, le=2200),
        pool: ReaderPool = Depends(readers)) -> Any:
    span = reports.period_of(*reports.bounds(since, until, period, year))
    with pool.connection() as db:
        return presence.availability(db, span.since.timestamp(), span.until.timestamp())


@router.get("/devices/{id}", dependencies=[allow(OPERATOR, LEADER, TECHNICIAN)],
            response_model=m.Device, summary="One device")
def get_device(id: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return registry.get_device(db, id)


@router.post("/devices/{id}/approve", dependencies=[allow(TECHNICIAN)],
             response_model=m.DeviceApproved,
             summary="Approve a pending device (one that claimed enrolment gets its broker "
                     "account)")
def approve(id: str, caller: Caller = Depends(require_token),
            svc: Services = Depends(services)) -> Any:
    assert svc.enrolment is not None
    return svc.enrolment.approve(id, caller.name) or svc.registry.approve(id)


@router.post("/devices/import", dependencies=[allow(TECHNICIAN)],
             response_model=m.CardImported, status_code=201,
             summary="Import a device's card (thanthien-provision): registry, hamlet or desk, "
                     "camera key, broker account",
             openapi_extra=body_limit(MAX_CARD_BYTES))
def import_card(body: dict[str, Any] = Body(..., description="the card's JSON"),
                replace: bool = Query(False, description="the id is known: new hardware takes "
                                      "its place and its old credentials are refused"),
                caller: Caller = Depends(require_token),
                svc: Services = Depends(services)) -> Any:
    assert svc.cards is not None
    try:
        card = DeviceCard.from_dict(body)
    except CardError as exc:
        raise InvalidRequest(str(exc)) from None
    return svc.cards.import_card(card, replace=replace, user=caller.name)


@router.post("/devices/bundle", dependencies=[allow(TECHNICIAN)],
             response_class=FileResponse, status_code=201,
             responses={201: {"content": {"application/zip": {}}}},
             summary="A device's boot-partition bundle and label (zip), its card imported "
                     "(or, with enrol, a one-time token in it)")
def make_bundle(body: m.BundleCreate, caller: Caller = Depends(require_token),
                svc: Services = Depends(services)) -> FileResponse:
    assert svc.bundles is not None
    archive = svc.bundles.make(body.model_dump(), caller.name)
    return FileResponse(archive, status_code=201, media_type="application/zip",
                        filename=archive.name,
                        background=BackgroundTask(bundles.remove, archive))


@router.post("/enrolments", dependencies=[allow(TECHNICIAN)],
             response_model=m.EnrolmentToken, status_code=201,
             summary="A one-time enrolment token for a device that will claim its identity")
def create_enrolment(body: m.EnrolmentCreate, caller: Caller = Depends(require_token),
                     svc: Services = Depends(services)) -> Any:
    assert svc.enrolment is not None
    return svc.enrolment.create(body.device_id, body.role, hamlet=body.hamlet, desk=body.desk,
                                label=body.label, ttl_s=body.ttl_h * 3600, user=caller.name)


@router.get("/enrolments", dependencies=[allow(TECHNICIAN)],
            response_model=list[m.Enrolment],
            summary="Enrolment tokens not yet used up: open, or claimed and awaiting approval")
def list_enrolments(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return enrolment.list_enrolments(db)


@public.post("/enrol", response_model=m.EnrolStatus,
             summary="A device claims its enrolment (and polls it, with the same body)")
def enrol(body: m.EnrolClaim, svc: Services = Depends(services)) -> Any:
    assert svc.enrolment is not None
    return svc.enrolment.claim(body.token, body.model_dump())


@router.post("/devices/{id}/revoke", dependencies=[allow(TECHNICIAN)],
             response_model=m.DeviceRevoked,
             summary="Revoke a device: refused from now on, its broker account removed and "
                     "its connection closed")
def revoke(id: str, svc: Services = Depends(services)) -> Any:
    return svc.revocation.revoke(id)


@router.get("/devices/{id}/telemetry", dependencies=[allow(OPERATOR, TECHNICIAN)],
            response_model=list[dict[str, Any]],
            summary="Recent telemetry, newest first")
def telemetry(id: str, limit: int = Query(100, ge=1, le=10_000),
              pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        registry.get_device(db, id)
        return registry.telemetry_history(db, id, limit)


@router.post("/devices/{id}/commands", dependencies=[allow(TECHNICIAN)],
             response_model=m.Command, status_code=201,
             summary="Send a command to a device")
def send_command(id: str, body: m.CommandCreate, svc: Services = Depends(services)) -> Any:
    return svc.commands.create(id, body.name, body.args, body.ttl_s)


@router.get("/devices/{id}/commands", dependencies=[allow(TECHNICIAN)],
            response_model=list[m.Command],
            summary="Commands sent to a device, newest first")
def device_commands(id: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return commands.list_commands(db, id)


@router.get("/events/quarantine", dependencies=[allow(TECHNICIAN)],
            response_model=list[m.QuarantinedEvent],
            summary="Events kept but not processed (their data could not be handled), "
                    "newest first, with the reason")
def quarantine(limit: int = Query(100, ge=1, le=10_000),
               pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return ingest.list_quarantine(db, limit)


@router.get("/events/sequence-anomalies", dependencies=[allow(TECHNICIAN)],
            response_model=list[m.SequenceAnomaly],
            summary="Gaps (events numbered but never received) and resets (numbering from 1 "
                    "again) in devices' event sequence numbers, newest first")
def sequence_anomalies(device: str | None = None, limit: int = Query(200, ge=1, le=10_000),
                       pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return sequence.anomalies(db, device, limit)


@router.get("/commands/{id}", dependencies=[allow(TECHNICIAN)],
            response_model=m.Command, summary="One command and its result")
def get_command(id: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return commands.get_command(db, id)


@router.get("/devices/{id}/config", dependencies=[allow(TECHNICIAN)],
            response_model=m.DesiredConfig,
            summary="Desired and reported config")
def get_config(id: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return desired_config.get_desired(db, id)


@router.put("/devices/{id}/config", dependencies=[allow(TECHNICIAN)],
            response_model=m.ConfigVersion,
            summary="Set the desired config")
def put_config(id: str, body: m.ConfigPut, svc: Services = Depends(services)) -> Any:
    return {"version": svc.desired_config.set(id, body.config)}


@router.patch("/devices/{id}/config", dependencies=[allow(TECHNICIAN)],
              response_model=m.ConfigPatched,
              summary="Change only some fields of the desired config (a JSON merge patch, "
                      "RFC 7396: null removes a key, objects are merged)")
def patch_config(id: str, body: m.ConfigPatch, svc: Services = Depends(services)) -> Any:
    version, config = svc.desired_config.patch(id, body.config)
    return {"version": version, "config": config}


@router.post("/devices/{id}/screenshot", dependencies=[allow(TECHNICIAN)],
             response_model=m.Command, status_code=201,
             summary="Ask a kiosk for a screenshot")
def ask_screenshot(id: str, request: Request, body: m.ScreenshotAsk | None = None,
                   svc: Services = Depends(services)) -> Any:
    host = request.headers.get("host") or "localhost"
    # The kiosk uploads the way the technician reached us: https behind the unit.
    base = (body.base_url if body else None) or f"{request.url.scheme}://{host}"
    return svc.screenshots.request(id, base)


@router.get("/devices/{id}/screenshot", dependencies=[allow(TECHNICIAN)],
            response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="The latest screenshot (PNG)")
def get_screenshot(id: str, pool: ReaderPool = Depends(readers)) -> Response:
    with pool.connection() as db:
        png, received = screenshots.latest(db, id)
        return Response(png, media_type="image/png", headers={"X-Received": str(received)})


@public.put("/screenshots/{token}", summary="A device uploads a requested PNG",
            openapi_extra=body_limit(screenshots.MAX_PNG))
async def upload_screenshot(token: str, request: Request,
                            svc: Services = Depends(services)) -> dict[str, Any]:
    body = await request.body()  # read by the gate, within the limit
    return await run_in_threadpool(svc.screenshots.receive, token, body)
