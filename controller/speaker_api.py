"""HTTP routes of the loudspeaker feature: audio library, broadcasts, receipts.

Added to the controller's router by :func:`add_routes`. Audio renditions are
served to devices (HTTP Basic with their broker credentials) or operators
(bearer token), with ``Range`` support so an interrupted download resumes.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from typing import TYPE_CHECKING, Any

from controller import audio_library, broadcasts
from controller.errors import InvalidRequest, NotFound, Unauthorized
from controller.http import Request, Response, Router
from wire.speaker import AUDIO_FILE_PATH

if TYPE_CHECKING:
    from controller.service import Controller

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_multipart(req: Request) -> tuple[bytes, dict[str, str], str | None]:
    """(file bytes, other form fields, file name) of a ``multipart/form-data`` body."""
    content_type = req.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest("upload audio as multipart/form-data with a 'file' part "
                             "and a 'title' field")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + req.body)
    data: bytes | None = None
    fields: dict[str, str] = {}
    filename: str | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if name == "file":
            data, filename = payload, part.get_filename()
        elif name:
            fields[str(name)] = payload.decode("utf-8", "replace")
    if data is None:
        raise InvalidRequest("the upload has no 'file' part")
    return data, fields, filename


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single ``Range: bytes=`` header, or None for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise InvalidRequest(f"Range {header!r}: expected bytes=FIRST-[LAST]")
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last) if last else size - 1)
    if start >= size or start > end:
        raise _Unsatisfiable(size)
    return start, end


class _Unsatisfiable(InvalidRequest):
    def __init__(self, size: int):
        super().__init__(f"range not satisfiable: the file has {size} bytes")
        self.size = size


def add_routes(router: Router, ctl: Controller) -> None:
    """Declare the speaker feature's endpoints on ``router``."""
    library, casts = ctl.audio_library, ctl.broadcasts

    @router.add("POST", "/api/v1/audio", "Upload audio (multipart: file, title)", status=201,
                max_body=audio_library.MAX_UPLOAD_BYTES + (1 << 20))
    def upload(req: Request) -> dict[str, Any]:
        data, fields, filename = parse_multipart(req)
        return library.add(data, fields.get("title") or filename or "", filename)

    @router.add("GET", "/api/v1/audio", "The audio library, newest first")
    def list_audio(req: Request) -> list[dict[str, Any]]:
        return audio_library.list_audio(ctl.reader())

    @router.add("GET", "/api/v1/audio/{id}", "One audio file's record")
    def get_audio(req: Request) -> dict[str, Any]:
        return audio_library.get_audio(ctl.reader(), req.params["id"])

    @router.add("GET", AUDIO_FILE_PATH.replace("{sha256}", "{sha}"),
                "A normalised rendition (device Basic auth or token; Range supported)",
                public=True)
    def audio_file(req: Request) -> Any:
        header = req.headers.get("Authorization")
        try:
            if header and header.startswith("Bearer "):
                router.authenticate(header)
            else:
                ctl.device_auth.check(header)
        except Unauthorized as exc:
            return Response(str(exc).encode(), "text/plain", 401,
                            {"WWW-Authenticate": 'Basic realm="thanthien"'})
        path = library.rendition_path(req.params["sha"])
        if not path.exists():
            raise NotFound(f"no audio file {req.params['sha']}")
        size = path.stat().st_size
        try:
            wanted = byte_range(req.headers.get("Range"), size)
        except _Unsatisfiable as exc:
            return Response(str(exc).encode(), "text/plain", 416,
                            {"Content-Range": f"bytes */{exc.size}"})
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{req.params["sha"]}"'}
        with open(path, "rb") as f:
            if wanted is None:
                return Response(f.read(), "audio/wav", 200, headers)
            f.seek(wanted[0])
            body = f.read(wanted[1] - wanted[0] + 1)
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
        return Response(body, "audio/wav", 206, headers)

    @router.add("POST", "/api/v1/broadcasts", "Schedule an item: {audio_id, start, rrule, "
                "targets, level, overlap, title}", status=201)
    def create(req: Request) -> dict[str, Any]:
        return casts.create(req.json_object())

    @router.add("POST", "/api/v1/broadcasts/emergency", "Emergency now: {audio_id, targets, "
                "repeat_s, expires_in_s, title}", status=201)
    def emergency(req: Request) -> dict[str, Any]:
        return casts.emergency(req.json_object())

    @router.add("GET", "/api/v1/broadcasts", "Scheduled items", query=("include_cancelled",))
    def list_items(req: Request) -> list[dict[str, Any]]:
        return broadcasts.list_broadcasts(ctl.reader(), req.flag("include_cancelled"))

    @router.add("GET", "/api/v1/broadcasts/{id}", "One item")
    def get_item(req: Request) -> dict[str, Any]:
        return broadcasts.get_broadcast(ctl.reader(), req.params["id"])

    @router.add("DELETE", "/api/v1/broadcasts/{id}", "Cancel an item on every speaker")
    def cancel(req: Request) -> dict[str, Any]:
        return casts.cancel(req.params["id"])

    @router.add("GET", "/api/v1/broadcasts/{id}/receipts",
                "Per occurrence, which speakers played it (format=csv for the log)",
                query=("format",))
    def get_receipts(req: Request) -> Any:
        if req.query.get("format") == "csv":
            text = broadcasts.receipts_csv(ctl.reader(), req.params["id"])
            return Response(text.encode(), "text/csv; charset=utf-8", 200, {
                "Content-Disposition":
                    f'attachment; filename="broadcast-{req.params["id"]}-receipts.csv"'})
        return broadcasts.receipts(ctl.reader(), req.params["id"])

    @router.add("GET", "/api/v1/playback-log", "Every receipt scheduled in [since, until) "
                "(local or UTC ISO times); format=csv for the district", query=(
                    "since", "until", "format"))
    def playback_log(req: Request) -> Any:
        rows = broadcasts.playback_log(ctl.reader(), req.query.get("since"),
                                       req.query.get("until"))
        if req.query.get("format") == "csv":
            return Response(broadcasts.playback_log_csv(rows).encode(),
                            "text/csv; charset=utf-8", 200,
                            {"Content-Disposition": 'attachment; filename="playback-log.csv"'})
        return rows

    @router.add("GET", "/api/v1/speakers/quiet-hours", "The nightly quiet hours (local)")
    def get_quiet(req: Request) -> dict[str, Any]:
        return {"quiet_hours": [t.strftime("%H:%M") for t in casts.quiet_hours]}

    @router.add("PUT", "/api/v1/speakers/quiet-hours", "Set the quiet hours: {from, to} as "
                "HH:MM local; only emergencies play then")
    def put_quiet(req: Request) -> dict[str, Any]:
        body = req.json_object()
        return casts.set_quiet_hours(body.get("from"), body.get("to"))

    @router.add("PUT", "/api/v1/hamlets/{name}/volume", "Volume of a hamlet's speakers: "
                "{volume: 0..1}")
    def hamlet_volume(req: Request) -> dict[str, Any]:
        return casts.set_volume("hamlet", req.params["name"], req.json_object().get("volume"))

    @router.add("PUT", "/api/v1/speakers/{id}/volume", "Volume of one speaker: {volume: 0..1}")
    def speaker_volume(req: Request) -> dict[str, Any]:
        return casts.set_volume("speaker", req.params["id"], req.json_object().get("volume"))
