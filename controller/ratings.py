"""Citizens' ratings: stored from kiosk events, listed and filtered for the API."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from controller.errors import InvalidRequest
from wire.messages import MessageError, parse_ts

EVENT_RATING = "rating"
SCALES = (3, 4, 5)


def store_rating(db: sqlite_utils.Database, event: dict[str, Any]) -> None:
    """Ingest handler for ``rating`` events; raises ValueError on impossible data."""
    data = event["data"]
    scale, level = data.get("scale"), data.get("level")
    if scale not in SCALES:
        raise ValueError(f"rating scale {scale!r}: expected one of {SCALES}")
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= scale:
        raise ValueError(f"rating level {level!r}: expected 1..{scale}")
    db.execute(
        "INSERT INTO ratings (event_id, device, ts, level, scale, misuse, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event["id"], event["device"], event["ts"], level, scale,
         int(bool(data.get("misuse"))), json.dumps(data, ensure_ascii=False)),
    )


def list_ratings(
    db: sqlite_utils.Database, *, since: str | None = None, until: str | None = None,
    device: str | None = None, include_misuse: bool = False, limit: int = 1000,
) -> list[dict[str, Any]]:
    """Ratings newest first; ``since``/``until`` are ISO 8601 times."""
    where, params = [], []
    for value, clause in ((since, "ts >= ?"), (until, "ts < ?")):
        if value:
            try:
                parse_ts(value)
            except MessageError:
                raise InvalidRequest(f"invalid time {value!r}: expected ISO 8601 UTC, e.g. "
                                     "2026-01-31T00:00:00Z") from None
            where.append(clause)
            params.append(_normalise(value))
    if device:
        where.append("device = ?")
        params.append(device)
    if not include_misuse:
        where.append("misuse = 0")
    sql = "SELECT event_id, device, ts, level, scale, misuse, data FROM ratings"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC LIMIT ?"
    rows = db.execute(sql, (*params, limit)).fetchall()
    return [
        {"id": r[0], "device": r[1], "ts": r[2], "level": r[3], "scale": r[4],
         "misuse": bool(r[5]), "data": json.loads(r[6])}
        for r in rows
    ]


def _normalise(value: str) -> str:
    from wire.messages import format_ts
    return format_ts(parse_ts(value))
