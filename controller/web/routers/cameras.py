"""The desk cameras: holds, clips to watch and export, cameras and their keys, which desk
each watches; and the cameras' own upload routes (device credentials, HTTP Basic).

Watching or downloading a clip is written in the audit log (who, which clip, when)
once per request that starts at its first byte: a browser's video player asks for
many ranges of one file as it seeks, and one viewing is one entry.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from controller.access.roles import LEADER, TECHNICIAN, Caller
from controller.cameras import Cameras, clips, desks, export, holds
from controller.cameras.errors import RangeMismatch
from controller.cameras.uploads import MAX_MANIFEST, MAX_SEGMENT_BYTES
from controller.db.connection import ReaderPool
from controller.errors import InvalidRequest, Unauthorized, _t, message_of
from controller.web.auth import allow, require_token
from controller.web.deps import Services, readers, services
from controller.web.errors import body as error_body
from controller.web.errors import request_language
from controller.web.gate import body_limit
from controller.web.models import cameras as m
from wire.camera import CLIP_DONE_PATH, CLIP_MANIFEST_PATH, CLIP_SEGMENT_PATH, CLIP_UPLOAD_PATH

router = APIRouter(prefix="/api/v1", tags=["cameras"], dependencies=[Depends(require_token)])
public = APIRouter(tags=["cameras"])

_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_DEVICE_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid device credentials"}}


def cameras(svc: Services = Depends(services)) -> Cameras:
    assert svc.cameras is not None  # the controller always builds it
    return svc.cameras


def _time(value: str | None, what: str) -> float | None:
    return None if value is None else holds.parse_time(value, what)


# -- holds ------------------------------------------------------------------------------

@router.get("/camera/holds", dependencies=[allow(LEADER)], response_model=list[m.Hold],
            summary="Holds, newest first (since/until: when they were made)")
def list_holds(camera: str | None = None, desk: str | None = None, state: str | None = None,
               since: str | None = Query(None, description=m.TIME),
               until: str | None = Query(None, description=m.TIME),
               limit: int = Query(1000, ge=1, le=10_000),
               pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return holds.list_holds(db, camera=camera, desk=desk, state=state,
                                since=_time(since, "since"), until=_time(until, "until"),
                                limit=limit)


@router.post("/camera/holds", dependencies=[allow(LEADER)], response_model=list[m.Hold],
             status_code=201,
             summary="Hold a camera's footage (or every camera's at a desk) by hand: at most "
                     "4 h, starting within the last 30 days")
def create_holds(body: m.HoldCreate, caller: Caller = Depends(require_token),
                 cams: Cameras = Depends(cameras)) -> Any:
    return cams.create_holds(body.model_dump(exclude_none=True), caller.name)


@router.get("/camera/holds/{id}", dependencies=[allow(LEADER)], response_model=m.Hold,
            summary="One hold")
def get_hold(id: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return holds.get_hold(db, id)


@router.delete("/camera/holds/{id}", dependencies=[allow(LEADER)], response_model=m.Hold,
               summary="Release a hold: the camera may let its footage go with retention")
def release_hold(id: str, cams: Cameras = Depends(cameras)) -> Any:
    return cams.release(id)


@router.post("/camera/holds/{id}/clip", dependencies=[allow(LEADER)], response_model=m.Clip,
             status_code=202,
             summary="Ask the camera to upload the hold's footage, to watch once verified")
def request_clip(id: str, caller: Caller = Depends(require_token),
                 cams: Cameras = Depends(cameras)) -> Any:
    return cams.request_clip(id, caller.name)


# -- clips ------------------------------------------------------------------------------

@router.get("/camera/clips", dependencies=[allow(LEADER)], response_model=list[m.Clip],
            summary="Clips, newest request first")
def list_clips(state: str | None = None, camera: str | None = None,
               limit: int = Query(1000, ge=1, le=10_000),
               pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return clips.list_clips(db, state=state, camera=camera, limit=limit)


@router.get("/camera/clips/{hold}", dependencies=[allow(LEADER)], response_model=m.Clip,
            summary="One clip: its state, problems, segments, bytes")
def get_clip(hold: str, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return clips.get_clip(db, hold)


@router.delete("/camera/clips/{hold}", dependencies=[allow(LEADER)], response_model=m.Clip,
               summary="Delete a clip's files (the hold stays)")
def delete_clip(hold: str, cams: Cameras = Depends(cameras)) -> Any:
    return cams.delete_clip(hold)


@router.get("/camera/clips/{hold}/video.mp4", dependencies=[allow(LEADER)],
            response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "a range"}},
            summary="Watch a verified clip (MP4, with Range for seeking); recorded in the "
                    "audit log")
def clip_video(hold: str, request: Request, caller: Caller = Depends(require_token),
               cams: Cameras = Depends(cameras)) -> Response:
    path = cams.clip_file(hold, "video")
    _record(request, caller, cams)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "no-store"})


@router.get("/camera/clips/{hold}/archive.tar", dependencies=[allow(LEADER)],
            response_class=FileResponse,
            responses={200: {"content": {"application/x-tar": {}}}},
            summary="Download a verified clip to export: segments, manifest, key and "
                    "VERIFY.txt; recorded in the audit log")
def clip_archive(hold: str, request: Request, caller: Caller = Depends(require_token),
                 cams: Cameras = Depends(cameras)) -> Response:
    path = cams.clip_file(hold, "archive")
    _record(request, caller, cams)
    return FileResponse(path, media_type="application/x-tar",
                        filename=export.archive_name(hold),
                        headers={"Cache-Control": "no-store"})


def _record(request: Request, caller: Caller, cams: Cameras) -> None:
    """One audit entry per viewing: a request for the file from its first byte (a player
    seeking asks for later ranges, which are the same viewing)."""
    wanted = request.headers.get("range")
    if wanted is not None and not re.fullmatch(r"\s*bytes\s*=\s*0\s*-.*", wanted):
        return
    client = request.client
    cams.record_access({"method": request.method, "path": request.url.path[:500],
                        "status": 206 if wanted else 200, "user": caller.name,
                        "role": caller.role, "address": client.host if client else None})


# -- cameras, keys, desks -----------------------------------------------------------------

@router.get("/camera/cameras", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=list[m.Camera],
            summary="Desk cameras: desk, pinned key, keys not accepted, last chain head")
def list_cameras(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return desks.list_cameras(db)


@router.post("/camera/cameras/{id}/key", dependencies=[allow(TECHNICIAN)],
             response_model=m.KeyAccepted,
             summary="Accept a camera's new signing key (a replaced card, a re-provisioned "
                     "camera): clips are verified against it from now on")
def accept_key(id: str, body: m.KeyAccept, caller: Caller = Depends(require_token),
               cams: Cameras = Depends(cameras)) -> Any:
    return cams.accept_key(id, body.public_key, caller.name)


@router.put("/desks/{id}/cameras", dependencies=[allow(LEADER, TECHNICIAN)],
            response_model=m.DeskCamerasSet,
            summary="The cameras watching a desk (a camera at another desk moves here)")
def put_desk_cameras(id: str, body: m.DeskCameras, cams: Cameras = Depends(cameras)) -> Any:
    return {"desk": id, "cameras": cams.set_desk_cameras(id, body.cameras)}


# -- the cameras' uploads -----------------------------------------------------------------

async def _device(request: Request, svc: Services) -> str:
    """The camera calling, from its broker credentials; the audit log names it."""
    device = await run_in_threadpool(svc.device_auth.check,
                                     request.headers.get("authorization"))
    request.scope.setdefault("state", {})["caller"] = Caller(str(device), "device")
    return str(device)


def _refused(exc: Unauthorized) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, 401, {"WWW-Authenticate": 'Basic realm="thanthien"'})


@public.get(CLIP_UPLOAD_PATH, response_model=m.UploadStatus, responses=_DEVICE_REFUSED,
            summary="A camera: what the controller has of a clip it is uploading")
async def upload_status(hold: str, request: Request,
                        svc: Services = Depends(services)) -> Any:
    try:
        device = await _device(request, svc)
    except Unauthorized as exc:
        return _refused(exc)
    return await run_in_threadpool(cameras(svc).upload_status, hold, device)


@public.put(CLIP_MANIFEST_PATH, response_model=m.ManifestStored, responses=_DEVICE_REFUSED,
            summary="A camera: the clip's manifest (JSON Lines, at most 1 MiB; its public "
                    "key in X-Camera-Key)", openapi_extra=body_limit(MAX_MANIFEST))
async def put_manifest(hold: str, request: Request, svc: Services = Depends(services)) -> Any:
    try:
        device = await _device(request, svc)
    except Unauthorized as exc:
        return _refused(exc)
    body = await request.body()  # read by the gate, within the limit
    return await run_in_threadpool(cameras(svc).put_manifest, hold, device,
                                   request.headers.get("x-camera-key"), body)


@public.put(CLIP_SEGMENT_PATH, response_model=m.SegmentStored,
            responses={**_DEVICE_REFUSED, 416: {"description": "resume from `received`"}},
            summary="A camera: a segment's bytes, resumable with Content-Range "
                    "(bytes first-last/total)",
            openapi_extra=body_limit(MAX_SEGMENT_BYTES, streamed=True))
async def put_segment(hold: str, seq: int, request: Request,
                      svc: Services = Depends(services)) -> Any:
    """Streamed to disk as it arrives; a cut keeps what came, for the camera to resume."""
    try:
        device = await _device(request, svc)
    except Unauthorized as exc:
        return _refused(exc)
    cams = cameras(svc)
    try:
        upload = await run_in_threadpool(cams.open_segment, hold, device, seq,
                                         _content_range(request.headers.get("content-range")))
    except RangeMismatch as exc:
        said = error_body(message_of(exc), request_language(request))
        return JSONResponse({**said, "received": exc.received}, 416,
                            {"Content-Range": f"bytes */{exc.received}"})
    try:
        async for chunk in request.stream():
            upload.write(chunk)
    except ClientDisconnect:
        pass  # the link was cut: what came is kept, and the camera resumes from there
    finally:
        received = await run_in_threadpool(cams.close_segment, hold, seq, upload)
    return {"seq": seq, "received": received, "complete": received == upload.size}


def _content_range(value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        raise InvalidRequest(_t("Content-Range {value!r}: expected bytes first-last/total"),
                             value=value[:80])
    first, last, total = (int(g) for g in match.groups())
    return first, last, total


@public.post(CLIP_DONE_PATH, response_model=m.Clip, responses=_DEVICE_REFUSED,
             summary="A camera: everything is sent; the controller verifies the clip and "
                     "answers its state")
async def upload_done(hold: str, request: Request, svc: Services = Depends(services)) -> Any:
    try:
        device = await _device(request, svc)
    except Unauthorized as exc:
        return _refused(exc)
    return await run_in_threadpool(cameras(svc).done, hold, device)
