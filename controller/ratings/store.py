"""Citizens' ratings: stored from kiosk events, listed and filtered for the API.

A ``rating`` event becomes a row at once, attributed to the desk the controller
has the kiosk at and to the officer its roster has on duty then (the kiosk's
own clock if synchronised, else the time of arrival); a later
``rating_detail`` event adds the reasons and dossier code the citizen gave.
After each new rating, hooks run in the same transaction (a follow-up case
for a dissatisfied answer, the desk's alert check).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from controller.broadcasts.schedule import TIMEZONE
from controller.errors import InvalidRequest, _t
from controller.ratings.roster import desk_of_kiosk, officer_on_duty
from wire.messages import MessageError, format_ts, json_text, parse_ts, utc_now
from wire.rating import (
    EVENT_RATING,
    EVENT_RATING_DETAIL,
    MAX_DOSSIER_LENGTH,
    SCALES,
    level_of,
)

__all__ = ["EVENT_RATING", "EVENT_RATING_DETAIL", "RatingStore", "list_ratings", "store_rating"]

#: Runs after a rating is stored: ``hook(db, rating)`` with the row as :func:`rating_row` gives.
RatingHook = Callable[[sqlite_utils.Database, dict[str, Any]], None]


class RatingStore:
    """Ingest handlers for ``rating`` and ``rating_detail`` events."""

    def __init__(self, hooks: list[RatingHook] | None = None):
        self.hooks = hooks or []

    def store(self, db: sqlite_utils.Database, event: dict[str, Any]) -> None:
        row = store_rating(db, event)
        for hook in self.hooks:
            hook(db, row)

    def store_detail(self, db: sqlite_utils.Database, event: dict[str, Any]) -> None:
        """Add reasons and dossier code to the rating they belong to (same kiosk only)."""
        data = event["data"]
        reasons = data.get("reasons") or []
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise ValueError(f"rating_detail reasons {reasons!r}: expected a list of keys")
        rating_id, code = data.get("rating_id"), _code(data.get("dossier_code"))
        if not isinstance(rating_id, str):
            raise ValueError(f"rating_detail rating_id {rating_id!r}: expected the rating's id")
        row = db.execute("SELECT data FROM ratings WHERE event_id = ? AND device = ?",
                         (rating_id, event["device"])).fetchone()
        if row is None:
            raise ValueError(f"rating_detail for unknown rating {data.get('rating_id')!r}")
        merged = {**json.loads(row[0]), "reasons": reasons, "dossier_code": code,
                  "detail_timed_out": bool(data.get("timed_out"))}
        db.execute("UPDATE ratings SET reasons = ?, dossier_code = ?, data = ? WHERE event_id = ?",
                   (json.dumps(reasons), code, json.dumps(merged, ensure_ascii=False),
                    rating_id))


def store_rating(db: sqlite_utils.Database, event: dict[str, Any]) -> dict[str, Any]:
    """Store one ``rating`` event and return its row as :func:`rating_row` gives it;
    raise ValueError on impossible data."""
    data = event["data"]
    scale, level = data.get("scale"), data.get("level")
    if scale not in SCALES:
        raise ValueError(f"rating scale {scale!r}: expected one of {SCALES}")
    try:
        meaning = level_of(scale, level)
    except MessageError as exc:
        raise ValueError(str(exc)) from None
    shown = data.get("officer") or {}
    desk, local, reasons = data.get("desk_id"), data.get("ts_local") or event["ts"], (
        data.get("reasons") or [])
    # A handler may only raise ValueError/KeyError/TypeError: the event is then kept
    # and acked; anything else would make the kiosk resend it forever.
    if not isinstance(shown, dict) or not isinstance(shown.get("id"), str | None):
        raise ValueError(f"rating officer {shown!r}: expected {{id, name, title}}")
    if not isinstance(desk, str | None) or not isinstance(local, str) or len(local) < 13:
        raise ValueError(f"rating desk_id {desk!r} / ts_local {local!r}: expected text")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ValueError(f"rating reasons {reasons!r}: expected a list of keys")
    code = _code(data.get("dossier_code"))
    # The controller's roster says which desk and officer a rating is for; what the kiosk
    # showed (its desk_id, its officer) stays in ``data`` but a kiosk's word (a tampered
    # card, a stale config) cannot move a rating to another desk or officer.
    desk = desk_of_kiosk(db, event["device"])
    # A kiosk whose clock is not trusted (a power cut, no clock battery, no network) may be
    # hours or years off: the officer on duty, the day and the hour come from when the
    # controller received the rating, and the row says so.
    when, source = event["ts"], "device"
    if not event["clock_synced"]:
        now = utc_now()
        when, source = format_ts(now), "controller"
        local = now.astimezone(ZoneInfo(TIMEZONE)).isoformat()
    officer = officer_on_duty(db, desk, when) if desk else None
    values = (event["id"], event["device"], event["ts"], level, scale,
              int(bool(data.get("misuse"))), json_text(data), desk,
              officer, local[:10], int(local[11:13]),
              int(meaning.satisfied), int(meaning.dissatisfied), json.dumps(reasons), code,
              source)
    db.execute(_INSERT, (*values, event["device"]))
    return _row(values, data, reasons)


_COLUMNS = ("event_id, device, ts, level, scale, misuse, data, desk, officer, local_day,"
            " local_hour, satisfied, dissatisfied, reasons, dossier_code, time_source")
_INSERT = f"INSERT INTO ratings ({_COLUMNS}, kiosk) VALUES ({', '.join('?' * 17)})"


def _code(value: Any) -> str | None:
    """A dossier code as the citizen typed or scanned it: short text."""
    if value is None or (isinstance(value, str) and len(value) <= MAX_DOSSIER_LENGTH):
        return value
    raise ValueError(f"dossier_code {str(value)[:80]!r}: expected text of at most "
                     f"{MAX_DOSSIER_LENGTH} characters")


def rating_row(r: tuple[Any, ...]) -> dict[str, Any]:
    """A row of :data:`_COLUMNS` as the API gives it."""
    return _row(r, json.loads(r[6]), json.loads(r[13]))


def _row(r: tuple[Any, ...], data: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    return {"id": r[0], "device": r[1], "ts": r[2], "level": r[3], "scale": r[4],
            "misuse": bool(r[5]), "data": data, "desk": r[7], "officer": r[8],
            "local_day": r[9], "local_hour": r[10], "satisfied": bool(r[11]),
            "dissatisfied": bool(r[12]), "reasons": reasons, "dossier_code": r[14],
            "time_source": r[15]}


def rating_filter(*, since: str | None = None, until: str | None = None,
                  device: str | None = None, desk: str | None = None,
                  officer: str | None = None,
                  include_misuse: bool = False) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (possibly empty) and its parameters, shared by lists and stats."""
    where: list[str] = []
    params: list[Any] = []
    for value, clause in ((since, "ts >= ?"), (until, "ts < ?")):
        if value:
            where.append(clause)
            params.append(_normalise(value))
    for value, column in ((device, "device"), (desk, "desk"), (officer, "officer")):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if not include_misuse:
        where.append("misuse = 0")
    return (" WHERE " + " AND ".join(where)) if where else "", params


def list_ratings(
    db: sqlite_utils.Database, *, since: str | None = None, until: str | None = None,
    device: str | None = None, desk: str | None = None, officer: str | None = None,
    include_misuse: bool = False, limit: int = 1000,
) -> list[dict[str, Any]]:
    """Ratings newest first; ``since``/``until`` are ISO 8601 times."""
    where, params = rating_filter(since=since, until=until, device=device, desk=desk,
                                  officer=officer, include_misuse=include_misuse)
    rows = db.execute(f"SELECT {_COLUMNS} FROM ratings{where} ORDER BY ts DESC LIMIT ?",
                      (*params, limit)).fetchall()
    return [rating_row(r) for r in rows]


def _normalise(value: str) -> str:
    try:
        return format_ts(parse_ts(value))
    except MessageError:
        raise InvalidRequest(_t("invalid time {value!r}: expected ISO 8601 UTC, e.g. "
                                "2026-01-31T00:00:00Z"), value=value) from None
