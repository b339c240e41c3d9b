"""Follow-up cases: every dissatisfied rating opens one, for leaders to work through.

The commune's plan asks that citizens who were served badly get an
apology; a case tracks that from ``open`` to ``contacted`` to ``closed``
with a note. Ratings flagged as misuse open no case (they stay visible in
the ratings list with ``include_misuse``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t

STATUSES = ("open", "contacted", "closed")
NO_CASE = _t("no case {id}")
_BAD_STATUS = _t("status {status!r}: expected one of {statuses}")


def open_case(db: sqlite_utils.Database, rating: dict[str, Any]) -> None:
    """Rating hook: open a case for a dissatisfied answer that is not flagged as misuse."""
    if rating["dissatisfied"] and not rating["misuse"]:
        now = time.time()
        db.execute("INSERT OR IGNORE INTO cases (rating_id, created, updated) VALUES (?, ?, ?)",
                   (rating["id"], now, now))


_SELECT = ("SELECT c.id, c.status, c.note, c.created, c.updated, r.event_id, r.ts, r.device,"
           " r.desk, r.officer, r.level, r.scale, r.reasons, r.dossier_code"
           " FROM cases c JOIN ratings r ON r.event_id = c.rating_id")


def _case(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "status": r[1], "note": r[2], "created": r[3], "updated": r[4],
            "rating": {"id": r[5], "ts": r[6], "kiosk": r[7], "desk": r[8], "officer": r[9],
                       "level": r[10], "scale": r[11], "reasons": json.loads(r[12]),
                       "dossier_code": r[13]}}


def list_cases(db: sqlite_utils.Database, status: str | None = None,
               desk: str | None = None, *, newest: int | None = None) -> list[dict[str, Any]]:
    """Cases, oldest first; with ``newest``, only that many of the newest, newest first."""
    sql = _SELECT + " WHERE 1"
    params: list[Any] = []
    if status:
        if status not in STATUSES:
            raise InvalidRequest(_BAD_STATUS, status=status, statuses=STATUSES)
        sql, params = sql + " AND c.status = ?", [*params, status]
    if desk:
        sql, params = sql + " AND r.desk = ?", [*params, desk]
    if newest is not None:
        sql, params = sql + " ORDER BY c.created DESC LIMIT ?", [*params, newest]
    else:
        sql += " ORDER BY c.created"
    return [_case(r) for r in db.execute(sql, params).fetchall()]


def get_case(db: sqlite_utils.Database, case_id: int) -> dict[str, Any]:
    row = db.execute(_SELECT + " WHERE c.id = ?", (case_id,)).fetchone()
    if row is None:
        raise NotFound(NO_CASE, id=case_id)
    return _case(row)


def update_case(writer: Writer, case_id: int, status: str | None = None,
                note: str | None = None) -> None:
    """Move a case along (``status``) or record what was done (``note``)."""
    if status is not None and status not in STATUSES:
        raise InvalidRequest(_BAD_STATUS, status=status, statuses=STATUSES)
    if note is not None and not isinstance(note, str):
        raise InvalidRequest(_t("note {note!r}: expected text"), note=note)

    def task(db: sqlite_utils.Database) -> int:
        return int(db.execute(
            "UPDATE cases SET status = coalesce(?, status), note = coalesce(?, note),"
            " updated = ? WHERE id = ?", (status, note, time.time(), case_id)).rowcount)

    if not writer.call(task):
        raise NotFound(NO_CASE, id=case_id)

