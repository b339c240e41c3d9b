"""Which desk each camera watches: a desk may have several cameras, a camera one desk.

A dissatisfied rating at a desk holds the footage of every camera at it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from controller.errors import InvalidRequest, NotFound, _t

#: The most cameras one desk may have.
MAX_PER_DESK = 8


def cameras_at(db: sqlite_utils.Database, desk: str) -> list[str]:
    """The cameras watching ``desk``, by id."""
    return [r[0] for r in db.execute(
        "SELECT camera FROM desk_cameras WHERE desk = ? ORDER BY camera", (desk,)).fetchall()]


def desk_of(db: sqlite_utils.Database, camera: str) -> str | None:
    row = db.execute("SELECT desk FROM desk_cameras WHERE camera = ?", (camera,)).fetchone()
    return row[0] if row else None


def all_desk_cameras(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """Desk -> its cameras, for every desk that has one."""
    out: dict[str, list[str]] = {}
    for desk, camera in db.execute(
            "SELECT desk, camera FROM desk_cameras ORDER BY desk, camera").fetchall():
        out.setdefault(desk, []).append(camera)
    return out


def set_cameras(db: sqlite_utils.Database, desk: str, cameras: list[str]) -> list[str]:
    """Writer task: ``desk`` is watched by exactly ``cameras`` (each an approved camera; a
    camera at another desk moves here). Returns them."""
    if db.execute("SELECT 1 FROM desks WHERE id = ?", (desk,)).fetchone() is None:
        raise NotFound(_t("no desk {key!r}"), key=desk)
    wanted = list(dict.fromkeys(cameras))
    if len(wanted) > MAX_PER_DESK:
        raise InvalidRequest(_t("desk {desk!r}: at most {most} cameras, not {count}"),
                             desk=desk, most=MAX_PER_DESK, count=len(wanted))
    for camera in wanted:
        row = db.execute("SELECT role, status FROM devices WHERE id = ?", (camera,)).fetchone()
        if row is None or row[0] != "camera" or row[1] != "approved":
            raise InvalidRequest(_t("camera {camera!r}: expected an approved device with the"
                                    " role camera"), camera=camera)
    db.execute("DELETE FROM desk_cameras WHERE desk = ?", (desk,))
    now = time.time()
    for camera in wanted:
        db.execute("INSERT INTO desk_cameras (camera, desk, updated) VALUES (?, ?, ?)"
                   " ON CONFLICT (camera) DO UPDATE SET desk = excluded.desk,"
                   " updated = excluded.updated", (camera, desk, now))
    return sorted(wanted)


def list_cameras(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every camera device: its desk, state, pinned and waiting keys, the last chain head,
    and how many holds are active."""
    rows = db.execute(
        "SELECT d.id, d.status, d.online, d.last_seen, dc.desk,"
        " (SELECT public_key FROM camera_keys k WHERE k.camera = d.id AND k.pinned = 1),"
        " (SELECT json_group_array(public_key) FROM camera_keys k WHERE k.camera = d.id"
        "  AND k.pinned = 0),"
        " (SELECT max(seq) FROM footage_heads h WHERE h.camera = d.id),"
        " (SELECT count(*) FROM camera_holds ch WHERE ch.camera = d.id"
        "  AND ch.state IN ('requested', 'waiting', 'held'))"
        " FROM devices d LEFT JOIN desk_cameras dc ON dc.camera = d.id"
        " WHERE d.role = 'camera' ORDER BY d.id").fetchall()
    return [{"id": r[0], "status": r[1], "online": bool(r[2]), "last_seen": r[3],
             "desk": r[4], "public_key": r[5], "new_keys": json.loads(r[6]),
             "last_seq": r[7], "active_holds": r[8]} for r in rows]
