"""Devices: the registry, telemetry, commands, desired config, kiosk screenshots."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from controller.access.roles import LEADER, OPERATOR, TECHNICIAN
from controller.db.connection import ReaderPool
from controller.documents import reports
from controller.fleet import commands, desired_config, ingest, presence, registry
from controller.ratings import screenshots
from controller.web.auth import allow, require_token
from controller.web.deps import Services, readers, services
from controller.web.gate import body_limit
from controller.web.models import fleet as m

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
             summary="Approve a pending device")
def approve(id: str, svc: Services = Depends(services)) -> Any:
    return svc.registry.approve(id)


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
