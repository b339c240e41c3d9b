"""Clips: a hold's footage uploaded by its camera, verified, and kept for leaders to watch.

A leader asks for a hold's clip (``requested``; the camera gets a ``clip``
command); the camera uploads the manifest and segments (``uploading``), then asks
for verification (``received`` while it runs); the controller verifies the chain,
the signatures against the pinned key and the chain heads it recorded
(``verified``, with a playable MP4 and an archive to export; or ``failed`` with
the problems). A clip's files go when a leader deletes it or its hold expires
(``deleted``; the row stays, for the record).

Storage is bounded by a quota: a clip takes, until verified, twice its footage
(the archive and the MP4 are made from the segments), then what its files hold.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import sqlite_utils

from controller.cameras.errors import QuotaExceeded
from controller.errors import InvalidRequest, NotFound, _t

REQUESTED, UPLOADING, RECEIVED, VERIFIED, FAILED, DELETED = (
    "requested", "uploading", "received", "verified", "failed", "deleted")
STATES = (REQUESTED, UPLOADING, RECEIVED, VERIFIED, FAILED, DELETED)
#: States in which the camera may upload.
OPEN = (REQUESTED, UPLOADING)
#: The clips' storage, by default.
QUOTA_BYTES = 20 << 30

_FIELDS = ("hold", "camera", "state", "bytes", "total", "segments", "problems", "video",
           "requested", "requested_by", "verified", "updated", "path")
_SELECT = ("SELECT c.hold, c.camera, c.state, c.bytes, c.total, c.segments, c.problems,"
           " c.video, c.requested, c.requested_by, c.verified, c.updated, c.path, h.desk,"
           " h.start,"
           " h.\"end\", h.reason FROM clips c JOIN camera_holds h ON h.id = c.hold")


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    clip = dict(zip(_FIELDS, r, strict=False))
    clip["problems"] = json.loads(clip["problems"])
    clip["video"] = bool(clip["video"])
    clip.update(zip(("desk", "start", "end", "reason"), r[len(_FIELDS):], strict=True))
    return clip


def get_clip(db: sqlite_utils.Database, hold_id: str) -> dict[str, Any]:
    row = db.execute(_SELECT + " WHERE c.hold = ?", (hold_id,)).fetchone()
    if row is None:
        raise NotFound(_t("no clip of hold {hold!r}"), hold=hold_id)
    return _row(row)


def find_clip(db: sqlite_utils.Database, hold_id: str) -> dict[str, Any] | None:
    row = db.execute(_SELECT + " WHERE c.hold = ?", (hold_id,)).fetchone()
    return _row(row) if row else None


def list_clips(db: sqlite_utils.Database, *, state: str | None = None,
               camera: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Clips, newest request first."""
    if state is not None and state not in STATES:
        raise InvalidRequest(_t("clip state {state!r}: expected one of {states}"),
                             state=state, states=", ".join(STATES))
    where, params = [], []
    for value, clause in ((state, "c.state = ?"), (camera, "c.camera = ?")):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    rows = db.execute(sql + " ORDER BY c.requested DESC LIMIT ?", (*params, limit)).fetchall()
    return [_row(r) for r in rows]


def usage(db: sqlite_utils.Database, *, besides: str | None = None) -> int:
    """Bytes the clips take or have reserved (every clip's but ``besides``)."""
    (used,) = db.execute(
        "SELECT coalesce(sum(CASE WHEN state IN ('verified', 'failed') THEN bytes"
        " ELSE max(bytes, 2 * total) END), 0) FROM clips WHERE state != 'deleted'"
        " AND hold IS NOT ?", (besides,)).fetchone()
    return int(used)


def check_quota(db: sqlite_utils.Database, quota: int, footage: int, *,
                besides: str | None = None) -> None:
    """Refuse a clip of ``footage`` bytes that would take the clips past ``quota``."""
    used, need = usage(db, besides=besides), 2 * footage
    if used + need > quota:
        raise QuotaExceeded(_t("clip storage is full: {used} of {quota} MiB taken, this clip "
                               "needs about {need} MiB more; delete clips no longer needed"),
                            used=used >> 20, quota=quota >> 20, need=need >> 20)


def request(db: sqlite_utils.Database, hold: dict[str, Any], user: str | None,
            quota: int) -> dict[str, Any] | None:
    """Writer task: a clip of ``hold`` is wanted. Returns the clip it replaces (a failed
    or deleted one asked for again: its folder may go), else None. Raises when the
    hold's footage cannot be had or would not fit."""
    if hold["state"] not in ("requested", "waiting", "held"):
        raise InvalidRequest(_t("hold {id} is {state}: its footage is not kept, no clip can be"
                                " made"), id=hold["id"], state=hold["state"])
    clip = find_clip(db, hold["id"])
    if clip is not None and clip["state"] == VERIFIED:
        raise InvalidRequest(_t("the clip of hold {id} is already verified"), id=hold["id"])
    if clip is not None and clip["state"] == RECEIVED:
        raise InvalidRequest(_t("the clip of hold {id} is being verified"), id=hold["id"])
    check_quota(db, quota, hold["bytes"] or 0, besides=hold["id"])
    now = time.time()
    if clip is not None and clip["state"] in OPEN:
        db.execute("UPDATE clips SET requested = ?, requested_by = ?, updated = ? WHERE hold = ?",
                   (now, user, now, hold["id"]))
        return None
    # Each request gets a folder of its own: one asked for again never meets the files
    # of the attempt before, which go once this one is committed.
    folder = f"{hold['id']}-{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO clips (hold, camera, state, bytes, total, problems, path, requested,"
               " requested_by, updated) VALUES (?, ?, 'requested', 0, ?, '[]', ?, ?, ?, ?)"
               " ON CONFLICT (hold) DO UPDATE SET state = 'requested', bytes = 0,"
               " total = excluded.total, segments = NULL, problems = '[]', video = 0,"
               " path = excluded.path, verified = NULL, requested = excluded.requested,"
               " requested_by = excluded.requested_by, updated = excluded.updated",
               (hold["id"], hold["camera"], hold["bytes"] or 0, folder, now, user, now))
    return clip


def update(db: sqlite_utils.Database, hold_id: str, **values: Any) -> None:
    """Writer task: set some of a clip's fields (``problems`` as a list)."""
    if "problems" in values:
        values["problems"] = json.dumps(values["problems"], ensure_ascii=False)
    columns = ", ".join(f"{name} = ?" for name in values)
    db.execute(f"UPDATE clips SET {columns}, updated = ? WHERE hold = ?",
               (*values.values(), time.time(), hold_id))


def mark_received(db: sqlite_utils.Database, hold_id: str, size: int) -> bool:
    """Writer task: an open clip is whole and waits for verification; False if it was not
    open (a second ``done`` of the same upload)."""
    return bool(db.execute(
        "UPDATE clips SET state = 'received', bytes = ?, updated = ? WHERE hold = ?"
        " AND state IN ('requested', 'uploading')", (size, time.time(), hold_id)).rowcount)


def apply_camera_state(db: sqlite_utils.Database, camera: str, data: dict[str, Any]) -> bool:
    """A ``clip_state`` event: ``uploading`` moves a requested clip on; ``failed`` (the
    camera gave up, with its reason) fails an open one. The controller's own verification
    decides the rest. False for a clip the controller never asked for."""
    hold_id, state = data.get("hold"), data.get("state")
    if not isinstance(hold_id, str):
        raise ValueError(f"clip_state hold {hold_id!r}: expected the hold's id")
    row = db.execute("SELECT camera, state FROM clips WHERE hold = ?", (hold_id,)).fetchone()
    if row is None:
        return False
    if row[0] != camera:
        raise ValueError(f"clip {hold_id!r} belongs to camera {row[0]!r}, not {camera!r}")
    if row[1] not in OPEN:
        return True
    if state == "uploading" and row[1] == REQUESTED:
        update(db, hold_id, state=UPLOADING)
    elif state == "failed":
        reason = str(data.get("reason") or "the camera could not upload the clip")[:500]
        update(db, hold_id, state=FAILED, problems=[f"camera: {reason}"])
    return True
