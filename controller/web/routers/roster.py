"""Officers, desks and the duty roster; officers' photos for the kiosks; the commune's
public information (phone numbers, hotline, notices) on every kiosk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from controller.access.roles import LEADER, OPERATOR, TECHNICIAN
from controller.cameras import desks as desk_cameras
from controller.db.connection import ReaderPool
from controller.ratings import public_info, roster
from controller.web.auth import allow, require_token
from controller.web.deps import RowIdPath, Services, readers, services
from controller.web.gate import body_limit
from controller.web.models import ratings as m

router = APIRouter(prefix="/api/v1", tags=["roster"], dependencies=[Depends(require_token)])
public = APIRouter(prefix="/api/v1", tags=["roster"])


@router.get("/officers", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=list[m.Officer], summary="Officers")
def list_officers(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return roster.list_officers(db)


@router.get("/officers/{id}", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=m.Officer, summary="One officer")
def get_officer(id: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return roster.get_officer(db, id)


@router.put("/officers/{id}", dependencies=[allow(LEADER)],
            response_model=m.Officer, summary="Create or update an officer")
def put_officer(id: str, body: m.OfficerPut, svc: Services = Depends(services)) -> Any:
    return svc.roster.put_officer(id, body.model_dump())


@router.put("/officers/{id}/photo", dependencies=[allow(LEADER)],
            response_model=m.PhotoStored,
            summary="Set an officer's photo (PNG or JPEG body)",
            openapi_extra=body_limit(roster.MAX_PHOTO))
async def put_photo(id: str, request: Request, svc: Services = Depends(services)) -> Any:
    body = await request.body()  # read by the gate, within the limit
    return await run_in_threadpool(svc.roster.put_photo, id, body)


@router.delete("/officers/{id}", dependencies=[allow(LEADER)],
               response_model=m.Deleted,
               summary="Remove an officer and their shifts")
def delete_officer(id: str, svc: Services = Depends(services)) -> Any:
    svc.roster.delete("officers", id)
    return {"deleted": id}


@public.get("/photos/{sha256}", response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
            summary="An officer photo by its SHA-256 (for kiosks, which hold no API token)")
def photo(sha256: str, pool: ReaderPool = Depends(readers)) -> Response:
    with pool.connection() as db:
        kind, data = roster.photo(db, sha256)
        return Response(data, media_type=kind, headers={"Cache-Control": "max-age=31536000"})


@router.get("/desks", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=list[m.Desk], summary="Desks, their kiosks and cameras")
def list_desks(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        watched = desk_cameras.all_desk_cameras(db)
        return [{**d, "cameras": watched.get(d["id"], [])} for d in roster.list_desks(db)]


@router.put("/desks/{id}", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=m.Desk,
            summary="Create or update a desk (its cameras: PUT /desks/{id}/cameras)")
def put_desk(id: str, body: m.DeskPut, svc: Services = Depends(services),
             pool: ReaderPool = Depends(readers)) -> Any:
    desk = svc.roster.put_desk(id, body.model_dump())
    with pool.connection() as db:
        return {**desk, "cameras": desk_cameras.cameras_at(db, id)}


@router.delete("/desks/{id}", dependencies=[allow(LEADER, TECHNICIAN)],
               response_model=m.Deleted, summary="Remove a desk and its shifts")
def delete_desk(id: str, svc: Services = Depends(services)) -> Any:
    svc.roster.delete("desks", id)
    return {"deleted": id}


@router.get("/roster", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=list[m.Shift], summary="Shifts, by start")
def list_shifts(desk: str | None = None, since: str | None = None,
                pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return roster.list_shifts(db, desk, since)


@router.post("/roster", dependencies=[allow(LEADER)],
             response_model=m.Shift, status_code=201, summary="Add a shift")
def add_shift(body: m.ShiftCreate, svc: Services = Depends(services)) -> Any:
    return svc.roster.add_shift(body.model_dump())


@router.delete("/roster/{id}", dependencies=[allow(LEADER)],
               response_model=m.Deleted, summary="Remove a shift")
def delete_shift(id: RowIdPath, svc: Services = Depends(services)) -> Any:
    svc.roster.delete("roster", id)
    return {"deleted": str(id)}


@router.get("/public-info", dependencies=[allow(LEADER, OPERATOR, TECHNICIAN)],
            response_model=m.PublicInfo,
            summary="The commune's public phone numbers, hotline and notices (kiosks' idle screen)")
def get_public_info(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return public_info.get_public_info(db)


@router.put("/public-info", dependencies=[allow(LEADER)], response_model=m.PublicInfo,
            summary="Replace the public information and push it to every kiosk")
def put_public_info(body: m.PublicInfoPut, svc: Services = Depends(services)) -> Any:
    return svc.public_info.put(body.model_dump())
