"""The loudspeakers: audio library (upload, files for speakers), broadcast items, receipts,
the playback log, quiet hours and volumes."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from controller.access.roles import LEADER, OPERATOR
from controller.broadcasts import audio_library, items, receipts
from controller.db.connection import ReaderPool
from controller.errors import NotFound, Unauthorized
from controller.web.auth import allow, require_token
from controller.web.deps import RowIdPath, Services, readers, services
from controller.web.errors import request_language, say
from controller.web.gate import body_limit
from controller.web.models import broadcasts as m
from controller.web.uploads import read_upload
from wire.speaker import AUDIO_FILE_PATH

router = APIRouter(prefix="/api/v1", tags=["broadcasts"], dependencies=[Depends(require_token)])
public = APIRouter(tags=["broadcasts"])

UPLOAD_LIMIT = audio_library.MAX_UPLOAD_BYTES + (1 << 20)


@router.post("/audio", dependencies=[allow(OPERATOR)],
             response_model=m.Audio, status_code=201,
             summary="Upload audio: multipart/form-data with a 'file' part and a 'title' field",
             openapi_extra={**body_limit(UPLOAD_LIMIT, streamed=True), "requestBody": {
                 "content": {"multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"], "properties": {
                         "file": {"type": "string", "format": "binary"},
                         "title": {"type": "string"}}}}}}})
async def upload(request: Request, svc: Services = Depends(services)) -> Any:
    """Streamed to a temporary file beside the library (never whole in memory), then
    checked, measured and normalised; one upload at a time (503 with Retry-After)."""
    library = svc.audio_library
    await run_in_threadpool(library.acquire_slot)  # before a byte of the body is read
    try:
        with tempfile.TemporaryDirectory(prefix=".upload-", dir=library.directory) as folder:
            form = await read_upload(request, folder, UPLOAD_LIMIT)
            return await run_in_threadpool(
                library.add_file, form.path, form.fields.get("title") or form.filename or "",
                form.filename, slot_held=True)
    finally:
        library.release_slot()


@router.get("/audio", dependencies=[allow(OPERATOR)],
            response_model=list[m.Audio], summary="The audio library, newest first")
def list_audio(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return audio_library.list_audio(db)


@router.get("/audio/{id}", dependencies=[allow(OPERATOR)],
            response_model=m.Audio, summary="One audio file's record")
def get_audio(id: RowIdPath, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return audio_library.get_audio(db, id)


@public.get(AUDIO_FILE_PATH, response_class=FileResponse,
            responses={200: {"content": {"audio/wav": {}}}, 206: {"description": "a range"},
                       401: {"description": "no valid device credentials or token"},
                       416: {"description": "range not satisfiable"}},
            summary="A normalised rendition, streamed with Range support "
                    "(a device's broker credentials as HTTP Basic, or a bearer token)")
def audio_file(sha256: str, request: Request, svc: Services = Depends(services)) -> Response:
    header = request.headers.get("authorization")
    try:
        if header and header.startswith("Bearer "):
            request.app.state.authenticate({b"authorization": header.encode("latin-1")})
        else:
            svc.device_auth.check(header)
    except Unauthorized as exc:
        return JSONResponse({"error": str(exc)}, 401,
                            {"WWW-Authenticate": 'Basic realm="thanthien"'})
    path = svc.audio_library.rendition_path(sha256)
    if not path.exists():
        raise NotFound(f"no audio file {sha256}")
    return FileResponse(path, media_type="audio/wav", headers={"ETag": f'"{sha256}"'})


@router.post("/broadcasts", dependencies=[allow(OPERATOR)],
             response_model=m.Broadcast, status_code=201,
             summary="Schedule an item")
def create(body: m.BroadcastCreate, svc: Services = Depends(services)) -> Any:
    return svc.broadcasts.create(body.model_dump(exclude_none=True))


@router.post("/broadcasts/check", dependencies=[allow(OPERATOR)],
             response_model=m.BroadcastCheck,
             summary="Check an item as POST /broadcasts would, without storing it: its "
                     "speakers, next occurrences, quiet-hour and overlap conflicts")
def check(body: m.BroadcastCreate, request: Request, svc: Services = Depends(services)) -> Any:
    result = svc.broadcasts.check(body.model_dump(exclude_none=True))
    lang = request_language(request)  # the problems in the caller's language, as errors are
    return {**result, "problems": [say(p, lang) for p in result["problems"]]}


@router.post("/broadcasts/emergency", dependencies=[allow(OPERATOR)],
             response_model=m.Broadcast, status_code=201,
             summary="Emergency now: attention tone, repeated until it expires or is replaced")
def emergency(body: m.EmergencyCreate, svc: Services = Depends(services)) -> Any:
    return svc.broadcasts.emergency(body.model_dump(exclude_none=True))


@router.get("/broadcasts", dependencies=[allow(OPERATOR, LEADER)],
            response_model=list[m.Broadcast], summary="Scheduled items")
def list_items(include_cancelled: bool = False,
               pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return items.list_broadcasts(db, include_cancelled)


@router.get("/broadcasts/{id}", dependencies=[allow(OPERATOR, LEADER)],
            response_model=m.Broadcast, summary="One item")
def get_item(id: RowIdPath, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return items.get_broadcast(db, id)


@router.delete("/broadcasts/{id}", dependencies=[allow(OPERATOR)],
               response_model=m.Broadcast,
               summary="Cancel an item on every speaker")
def cancel(id: RowIdPath, svc: Services = Depends(services)) -> Any:
    return svc.broadcasts.cancel(id)


@router.get("/broadcasts/{id}/receipts", dependencies=[allow(OPERATOR, LEADER)],
            response_model=list[m.OccurrenceReceipts],
            responses={200: {"content": {"text/csv": {}}}},
            summary="Per occurrence, which speakers played it (format=csv for the log)")
def get_receipts(id: RowIdPath, format: str | None = None,
                 pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        if format == "csv":
            return Response(receipts.receipts_csv(db, id), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition":
                                     f'attachment; filename="broadcast-{id}-receipts.csv"'})
        return receipts.receipts(db, id)


@router.get("/playback-log", dependencies=[allow(OPERATOR, LEADER)],
            response_model=list[dict[str, Any]],
            responses={200: {"content": {"text/csv": {}}}},
            summary="Every receipt scheduled in [since, until) (local or UTC ISO times); "
                    "format=csv for the district")
def playback_log(since: str | None = None, until: str | None = None,
                 format: str | None = None,
                 limit: int = Query(50_000, ge=1, le=50_000,
                                    description="at most 50,000 rows: page on with `since`"),
                 pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        rows = receipts.playback_log(db, since, until, limit)
    if format == "csv":
        return Response(receipts.playback_log_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="playback-log.csv"'})
    return rows


@router.get("/speakers/quiet-hours", dependencies=[allow(OPERATOR)],
            response_model=m.QuietHours,
            summary="The nightly quiet hours (local)")
def get_quiet(svc: Services = Depends(services)) -> Any:
    return {"quiet_hours": [t.strftime("%H:%M") for t in svc.broadcasts.quiet_hours]}


@router.put("/speakers/quiet-hours", dependencies=[allow(OPERATOR)],
            response_model=m.QuietHoursSet,
            summary="Set the quiet hours as HH:MM local; only emergencies play then")
def put_quiet(body: m.QuietHoursPut, svc: Services = Depends(services)) -> Any:
    return svc.broadcasts.set_quiet_hours(body.from_, body.to)


@router.put("/hamlets/{name}/volume", dependencies=[allow(OPERATOR)],
            response_model=m.Volume,
            summary="Volume of a hamlet's speakers, 0..1")
def hamlet_volume(name: str, body: m.VolumePut, svc: Services = Depends(services)) -> Any:
    return svc.broadcasts.set_volume("hamlet", name, body.volume)


@router.put("/speakers/{id}/volume", dependencies=[allow(OPERATOR)],
            response_model=m.Volume,
            summary="Volume of one speaker, 0..1")
def speaker_volume(id: str, body: m.VolumePut, svc: Services = Depends(services)) -> Any:
    return svc.broadcasts.set_volume("speaker", id, body.volume)
