"""Officers, desks and the duty roster: who serves at which desk, when.

Each desk may have a kiosk. Whenever the desk, its officers or its roster
change, the kiosk's desired config gets the desk's name and the coming
shifts, so it shows who is on duty (and offline it still knows the next
days' roster). Ratings are attributed to the officer the kiosk showed, or
else the roster's officer at the rating's time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from typing import Any

import sqlite_utils

from controller.db.connection import ReaderPool
from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t
from controller.fleet.desired_config import DesiredConfig
from wire.messages import MessageError, format_ts, parse_ts, utc_now

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PUSH_DAYS = 7  # shifts sent to a kiosk: the current ones and the next week's
MAX_PHOTO = 512 << 10
PHOTO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def desk_of_kiosk(db: sqlite_utils.Database, kiosk: str) -> str | None:
    row = db.execute("SELECT id FROM desks WHERE kiosk = ?", (kiosk,)).fetchone()
    return row[0] if row else None


def officer_on_duty(db: sqlite_utils.Database, desk: str, ts: str) -> str | None:
    """The officer rostered at ``desk`` at the wire time ``ts``, if any."""
    row = db.execute("SELECT officer FROM roster WHERE desk = ? AND start <= ? AND end > ?"
                     " ORDER BY start DESC LIMIT 1", (desk, ts, ts)).fetchone()
    return row[0] if row else None


#: What an id names, and how a bad one is refused.
_BAD_ID = {"officer": _t("officer id {value!r}: expected 1-63 of a-z, 0-9, '-', '_'"),
           "desk": _t("desk id {value!r}: expected 1-63 of a-z, 0-9, '-', '_'")}
_NO_SUCH = {"desks": _t("no desk {key!r}"), "officers": _t("no officer {key!r}"),
            "roster": _t("no roster {key!r}")}


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise InvalidRequest(_BAD_ID[what], value=value)
    return value


def _text(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRequest(_t("'{key}' {value!r}: expected text"), key=key, value=value)
    return value


def _time(value: Any, what: str) -> str:
    try:
        return format_ts(parse_ts(value))
    except (MessageError, AttributeError):
        raise InvalidRequest(_t("{what} {value!r}: expected an ISO 8601 time with zone"),
                             what=what, value=value) from None


class Roster:
    """Writes officers, desks and shifts, then refreshes the affected kiosks' config."""

    def __init__(self, writer: Writer, readers: ReaderPool, desired_config: DesiredConfig, *,
                 refresh_s: float = 3600.0):
        self.writer, self.readers, self.desired_config = writer, readers, desired_config
        self.refresh_s = refresh_s
        self._next_refresh = 0.0

    def refresh_if_due(self) -> None:
        """Called by the controller's sweeper: slide each kiosk's week of shifts hourly."""
        if time.monotonic() >= self._next_refresh:
            self._next_refresh = time.monotonic() + self.refresh_s
            self.push_all()

    # -- officers ---------------------------------------------------------------------

    def put_officer(self, officer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        _id(officer_id, "officer")
        row = (officer_id, _text(body, "name", required=True), _text(body, "title") or "",
               _text(body, "phone"), _text(body, "photo"), time.time())
        self.writer.call(lambda db: db.execute(
            "INSERT INTO officers (id, name, title, phone, photo, created) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, title = excluded.title,"
            " phone = excluded.phone, photo = excluded.photo", row))
        self.push_all()
        with self.readers.connection() as db:
            return get_officer(db, officer_id)

    def put_photo(self, officer_id: str, body: bytes) -> dict[str, Any]:
        """Store an officer's photo (PNG or JPEG); kiosks fetch it by its SHA-256."""
        kind = next((t for magic, t in PHOTO_TYPES.items() if body.startswith(magic)), None)
        if kind is None:
            raise InvalidRequest(_t("officer photo must be a PNG or JPEG image"))
        digest = hashlib.sha256(body).hexdigest()

        def task(db: sqlite_utils.Database) -> None:
            if db.execute("SELECT 1 FROM officers WHERE id = ?", (officer_id,)).fetchone() is None:
                raise NotFound(_NO_SUCH["officers"], key=officer_id)
            db.execute("INSERT OR REPLACE INTO officer_photos (officer, sha256, type, data)"
                       " VALUES (?, ?, ?, ?)", (officer_id, digest, kind, body))

        self.writer.call(task)
        self.push_all()
        return {"officer": officer_id, "sha256": digest, "bytes": len(body)}

    def delete(self, table: str, key: Any) -> None:
        if not self.writer.call(
                lambda db: db.execute(f"DELETE FROM {table} WHERE id = ?", (key,)).rowcount):
            raise NotFound(_NO_SUCH[table], key=key)
        self.push_all()

    # -- desks ------------------------------------------------------------------------

    def put_desk(self, desk_id: str, body: dict[str, Any]) -> dict[str, Any]:
        _id(desk_id, "desk")
        kiosk = _text(body, "kiosk")
        row = (desk_id, _text(body, "name", required=True), kiosk, time.time())

        def task(db: sqlite_utils.Database) -> None:
            if kiosk and db.execute("SELECT 1 FROM devices WHERE id = ?", (kiosk,)).fetchone(
                    ) is None:
                raise InvalidRequest(_t("desk kiosk {kiosk!r}: no such device"), kiosk=kiosk)
            db.execute("INSERT INTO desks (id, name, kiosk, created) VALUES (?,?,?,?)"
                       " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                       " kiosk = excluded.kiosk", row)

        self.writer.call(task)
        self.push(desk_id)
        with self.readers.connection() as db:
            return get_desk(db, desk_id)

    # -- shifts -----------------------------------------------------------------------

    def add_shift(self, body: dict[str, Any]) -> dict[str, Any]:
        desk, officer = _id(body.get("desk"), "desk"), _id(body.get("officer"), "officer")
        start, end = _time(body.get("start"), "start"), _time(body.get("end"), "end")
        if end <= start:
            raise InvalidRequest(_t("shift ends ({end}) before it starts ({start})"), end=end,
                                 start=start)

        def task(db: sqlite_utils.Database) -> int:
            for table, key in (("desks", desk), ("officers", officer)):
                if db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (key,)).fetchone() is None:
                    raise InvalidRequest(_NO_SUCH[table], key=key)
            cursor = db.execute("INSERT INTO roster (desk, officer, start, end)"
                                " VALUES (?,?,?,?)", (desk, officer, start, end))
            return int(cursor.lastrowid or 0)

        shift_id = self.writer.call(task)
        self.push(desk)
        return {"id": shift_id, "desk": desk, "officer": officer, "start": start, "end": end}

    # -- the kiosks' view -------------------------------------------------------------

    def push_all(self) -> None:
        for (desk,) in self.readers.execute("SELECT id FROM desks").fetchall():
            self.push(desk)

    def push(self, desk_id: str) -> None:
        """Merge the desk's name and coming shifts into its kiosk's desired config."""
        with self.readers.connection() as db:
            wanted = self._wanted(db, desk_id)
        if wanted is not None:
            self.desired_config.set(*wanted)

    def _wanted(self, db: sqlite_utils.Database,
                desk_id: str) -> tuple[str, dict[str, Any]] | None:
        """(kiosk, config) when the desk's kiosk should get a new config, else None."""
        desk = db.execute("SELECT name, kiosk FROM desks WHERE id = ?", (desk_id,)).fetchone()
        if desk is None or desk[1] is None:
            return None
        now = utc_now()
        shifts = db.execute(
            "SELECT r.start, r.end, o.id, o.name, o.title, p.sha256 FROM roster r"
            " JOIN officers o ON o.id = r.officer LEFT JOIN officer_photos p ON p.officer = o.id"
            " WHERE r.desk = ? AND r.end > ? AND r.start < ? ORDER BY start",
            (desk_id, format_ts(now), format_ts(now + dt.timedelta(days=PUSH_DAYS)))).fetchall()
        duty = [{"start": s, "end": e, "officer": {"id": i, "name": n, "title": t,
                                                   "photo_sha256": sha}}
                for s, e, i, n, t, sha in shifts]
        current = db.execute("SELECT desired_config FROM devices WHERE id = ?",
                             (desk[1],)).fetchone()
        config = json.loads(current[0]) if current and current[0] else {}
        wanted = {**config, "desk": desk[0], "desk_id": desk_id, "duty": duty}
        return (desk[1], wanted) if wanted != config else None


def get_officer(db: sqlite_utils.Database, officer_id: str) -> dict[str, Any]:
    row = db.execute("SELECT id, name, title, phone, photo FROM officers WHERE id = ?",
                     (officer_id,)).fetchone()
    if row is None:
        raise NotFound(_NO_SUCH["officers"], key=officer_id)
    return dict(zip(("id", "name", "title", "phone", "photo"), row, strict=True))


def get_desk(db: sqlite_utils.Database, desk_id: str) -> dict[str, Any]:
    row = db.execute("SELECT id, name, kiosk FROM desks WHERE id = ?", (desk_id,)).fetchone()
    if row is None:
        raise NotFound(_NO_SUCH["desks"], key=desk_id)
    return dict(zip(("id", "name", "kiosk"), row, strict=True))


def list_officers(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    ids = db.execute("SELECT id FROM officers ORDER BY name").fetchall()
    return [get_officer(db, i) for (i,) in ids]


def list_desks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    ids = db.execute("SELECT id FROM desks ORDER BY id").fetchall()
    return [get_desk(db, i) for (i,) in ids]


def photo(db: sqlite_utils.Database, sha256: str) -> tuple[str, bytes]:
    """An officer photo by its hash: (content type, bytes)."""
    row = db.execute("SELECT type, data FROM officer_photos WHERE sha256 = ?",
                     (sha256,)).fetchone()
    if row is None:
        raise NotFound(_t("no such photo"))
    return str(row[0]), bytes(row[1])


def list_shifts(db: sqlite_utils.Database, desk: str | None,
                since: str | None) -> list[dict[str, Any]]:
    sql = "SELECT id, desk, officer, start, end FROM roster WHERE 1"
    params: list[Any] = []
    if desk:
        sql, params = sql + " AND desk = ?", [*params, desk]
    if since:
        sql, params = sql + " AND end > ?", [*params, _time(since, "since")]
    rows = db.execute(sql + " ORDER BY start", params).fetchall()
    return [dict(zip(("id", "desk", "officer", "start", "end"), r, strict=True)) for r in rows]

