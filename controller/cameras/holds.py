"""Holds: a camera keeps the footage of a time range until the hold expires or is released.

A hold is made by the controller (automatically after a dissatisfied rating, or by
a leader) and sent to its camera as a ``hold`` command; the camera answers with
``hold_state`` events. Its state, as the controller sees it: ``requested`` (sent,
not yet confirmed), then the camera's (:data:`wire.camera.HOLD_STATES`), or
``released`` as soon as a leader releases it.

Manual holds are bounded (:func:`check_manual`): at most :data:`MAX_SPAN_S` long,
starting within the cameras' retention (:data:`RETENTION_DAYS`), and at most
:data:`MAX_ACTIVE` of them active at once.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from controller.broadcasts.schedule import TIMEZONE
from controller.errors import InvalidRequest, NotFound, _t
from wire.camera import HOLD_EXPIRED, HOLD_RELEASED, HOLD_STATES

REQUESTED = "requested"
STATES = (REQUESTED, *HOLD_STATES)
#: States in which the camera keeps (or is asked to keep) the footage.
ACTIVE = (REQUESTED, "waiting", "held")
#: A hold by hand covers at most this long.
MAX_SPAN_S = 4 * 3600
#: ... starts no earlier than this many days ago (the cameras keep 30 days).
RETENTION_DAYS = 30
#: ... ends no later than this far ahead.
MAX_AHEAD_S = 86400
#: ... lasts at most this many days.
MAX_DAYS = 365
#: Holds by hand active at once (automatic ones are never refused: a citizen's complaint
#: keeps its footage; they are bounded by the ratings, whose pace is checked).
MAX_ACTIVE = 500
#: What a reason may hold.
MAX_REASON = 200

_FIELDS = ("id", "camera", "desk", "start", "end", "reason", "rating_id", "created",
           "created_by", "expires", "state", "segments", "bytes", "updated")
_SELECT = ("SELECT h.id, h.camera, h.desk, h.start, h.\"end\", h.reason, h.rating_id,"
           " h.created, h.created_by, h.expires, h.state, h.segments, h.bytes, h.updated,"
           " c.state FROM camera_holds h LEFT JOIN clips c ON c.hold = h.id")


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    hold = dict(zip(_FIELDS, r, strict=False))
    hold["automatic"] = hold["rating_id"] is not None
    hold["clip"] = r[len(_FIELDS)]
    return hold


def parse_time(value: Any, what: str) -> float:
    """A time in a request: Unix seconds, or ISO 8601 (without a zone: the commune's)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 946684800 <= value <= 7258118400:  # 2000 to 2200
            return float(value)
    elif isinstance(value, str):
        try:
            if value.strip().replace(".", "", 1).isdigit():  # Unix seconds, from a query
                return parse_time(float(value), what)
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=ZoneInfo(TIMEZONE))
            if 2000 <= moment.year <= 2200:
                return moment.timestamp()
        except ValueError:
            pass
    raise InvalidRequest(_t("{what} {value!r}: expected an ISO 8601 time (the commune's time"
                            " without a zone) or Unix seconds, years 2000 to 2200"),
                         what=what, value=value)


def check_manual(db: sqlite_utils.Database, start: float, end: float, days: float,
                 count: int, now: float) -> None:
    """Refuse a hold by hand outside the bounds, naming what was wrong."""
    if end <= start:
        raise InvalidRequest(_t("hold ends ({end}) before it starts ({start})"),
                             end=_iso(end), start=_iso(start))
    if end - start > MAX_SPAN_S:
        raise InvalidRequest(_t("hold of {hours:.1f} h: at most {most} h of footage at once"),
                             hours=(end - start) / 3600, most=MAX_SPAN_S // 3600)
    if start < now - RETENTION_DAYS * 86400:
        raise InvalidRequest(_t("hold starts {start}, more than {days} days ago: the cameras "
                                "no longer keep that footage"), start=_iso(start),
                             days=RETENTION_DAYS)
    if end > now + MAX_AHEAD_S:
        raise InvalidRequest(_t("hold ends {end}: at most a day ahead"), end=_iso(end))
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(_t("hold of {days} days: expected 1 to {most}"), days=days,
                             most=MAX_DAYS)
    active = active_count(db, manual=True)
    if active + count > MAX_ACTIVE:
        raise InvalidRequest(_t("{active} holds by hand are active, at most {most}: release "
                                "some first"), active=active, most=MAX_ACTIVE)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(TIMEZONE)).isoformat(timespec="seconds")


def active_count(db: sqlite_utils.Database, *, manual: bool = False) -> int:
    """Holds active now (``manual``: those made by hand)."""
    (count,) = db.execute("SELECT count(*) FROM camera_holds WHERE state IN"
                          " ('requested', 'waiting', 'held')"
                          + (" AND rating_id IS NULL" if manual else "")).fetchone()
    return int(count)


def insert_hold(db: sqlite_utils.Database, *, camera: str, desk: str | None, start: float,
                end: float, reason: str, expires: float, rating_id: str | None = None,
                created_by: str | None = None) -> dict[str, Any]:
    """Writer task: store a new hold, ``requested``; return it."""
    hold_id, now = str(uuid.uuid4()), time.time()
    db.execute("INSERT INTO camera_holds (id, camera, desk, start, \"end\", reason, rating_id,"
               " created, created_by, expires, state, updated)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?)",
               (hold_id, camera, desk, start, end, reason[:MAX_REASON], rating_id, now,
                created_by, expires, now))
    return get_hold(db, hold_id)


def get_hold(db: sqlite_utils.Database, hold_id: str) -> dict[str, Any]:
    row = db.execute(_SELECT + " WHERE h.id = ?", (hold_id,)).fetchone()
    if row is None:
        raise NotFound(_t("no hold {id!r}"), id=hold_id)
    return _row(row)


def list_holds(db: sqlite_utils.Database, *, camera: str | None = None,
               desk: str | None = None, state: str | None = None, since: float | None = None,
               until: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Holds, newest first; ``since``/``until`` bound when they were made."""
    if state is not None and state not in STATES:
        raise InvalidRequest(_t("hold state {state!r}: expected one of {states}"), state=state,
                             states=", ".join(STATES))
    where, params = [], []
    for value, clause in ((camera, "h.camera = ?"), (desk, "h.desk = ?"),
                          (state, "h.state = ?"), (since, "h.created >= ?"),
                          (until, "h.created < ?")):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    rows = db.execute(sql + " ORDER BY h.created DESC LIMIT ?", (*params, limit)).fetchall()
    return [_row(r) for r in rows]


def apply_state(db: sqlite_utils.Database, camera: str, data: dict[str, Any]) -> bool:
    """A ``hold_state`` event from ``camera``: the hold takes the camera's state (a hold
    released or expired here stays so); False for a hold the controller never made (one
    sent as a raw command)."""
    hold_id, state = data.get("hold"), data.get("state")
    if state not in HOLD_STATES:
        raise ValueError(f"hold state {state!r}: expected one of {HOLD_STATES}")
    row = db.execute("SELECT camera, state FROM camera_holds WHERE id = ?",
                     (hold_id,)).fetchone()
    if row is None:
        return False
    if row[0] != camera:
        raise ValueError(f"hold {hold_id!r} belongs to camera {row[0]!r}, not {camera!r}")
    counts = [data.get(k) if isinstance(data.get(k), int) and not isinstance(
        data.get(k), bool) else None for k in ("segments", "bytes")]
    ended = row[1] in (HOLD_RELEASED, HOLD_EXPIRED)
    db.execute("UPDATE camera_holds SET state = ?, segments = coalesce(?, segments),"
               " bytes = coalesce(?, bytes), updated = ? WHERE id = ?",
               (row[1] if ended else state, *counts, time.time(), hold_id))
    return True


def release(db: sqlite_utils.Database, hold_id: str) -> dict[str, Any]:
    """Writer task: the hold is released here at once (the camera is told apart)."""
    hold = get_hold(db, hold_id)
    db.execute("UPDATE camera_holds SET state = 'released', updated = ? WHERE id = ?",
               (time.time(), hold_id))
    return {**hold, "state": HOLD_RELEASED}


def expire(db: sqlite_utils.Database, now: float | None = None) -> list[str]:
    """Writer task: holds past their expiry are ``expired`` (the camera lets them go by
    itself); the ids of every hold past its expiry whose clip may now go."""
    now = time.time() if now is None else now
    db.execute("UPDATE camera_holds SET state = 'expired', updated = ? WHERE expires <= ?"
               " AND state IN ('requested', 'waiting', 'held')", (now, now))
    return [r[0] for r in db.execute(
        "SELECT h.id FROM camera_holds h JOIN clips c ON c.hold = h.id WHERE h.expires <= ?"
        " AND c.state != 'deleted'", (now,)).fetchall()]


def summary(db: sqlite_utils.Database, since: float, until: float) -> dict[str, Any]:
    """Holds made in [since, until): automatic (after a rating) and by hand; clips
    verified in it. From the rows ``GET /camera/holds?since=&until=`` and
    ``GET /camera/clips`` list."""
    (automatic, manual) = db.execute(
        "SELECT count(rating_id), count(*) - count(rating_id) FROM camera_holds"
        " WHERE created >= ? AND created < ?", (since, until)).fetchone()
    (verified,) = db.execute("SELECT count(*) FROM clips WHERE verified >= ? AND verified < ?",
                             (since, until)).fetchone()
    return {"holds": automatic + manual, "automatic": automatic, "manual": manual,
            "clips_verified": verified}
