"""Playback receipts: what each speaker reports it played, per occurrence, and the logs
made from them (per broadcast and across all, as JSON or CSV for the district)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import sqlite_utils

from controller.broadcasts.items import get_broadcast, occurrence_id, resolve_targets, timing_of
from controller.broadcasts.schedule import TIMEZONE, parse_start
from wire.messages import format_ts, utc_now
from wire.speaker import RECEIPT_STATUSES


def store_receipt(db: sqlite_utils.Database, event: dict[str, Any]) -> None:
    """Ingest handler for ``playback`` events: one receipt per device and occurrence."""
    data = event["data"]
    status, occurrence = data.get("status"), data.get("occurrence")
    if status not in RECEIPT_STATUSES:
        raise ValueError(f"playback status {status!r}: expected one of {RECEIPT_STATUSES}")
    if not isinstance(occurrence, str) or "@" not in occurrence:
        raise ValueError(f"playback occurrence {occurrence!r}: expected <broadcast>@<time>")
    broadcast = occurrence.split("@", 1)[0]
    # A "skipped" never overwrites a "played" or "cut_short" (a reinstalled node that lost
    # its ledger may report a past occurrence again).
    db.execute(
        "INSERT INTO playback_receipts (device, occurrence, broadcast_id, status,"
        " reason, scheduled, started, ended, played_s, event_id, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, occurrence) DO UPDATE"
        " SET status = excluded.status, reason = excluded.reason, started = excluded.started,"
        " ended = excluded.ended, played_s = excluded.played_s, event_id = excluded.event_id,"
        " data = excluded.data WHERE excluded.status != 'skipped'"
        " OR playback_receipts.status = 'skipped'",
        (event["device"], occurrence, int(broadcast) if broadcast.isdigit() else None, status,
         data.get("reason"), data.get("scheduled"), data.get("started"), data.get("ended"),
         data.get("played_s"), event["id"], json.dumps(data, ensure_ascii=False)))


def receipts(db: sqlite_utils.Database, broadcast_id: int | str, tz: str = TIMEZONE,
             limit: int = 200) -> list[dict[str, Any]]:
    """Per past occurrence: every targeted speaker and what it reported (or that it has not)."""
    b = get_broadcast(db, broadcast_id)
    timing = timing_of(db, b, tz)
    now = utc_now()
    begin = parse_start(b["start"], tz)
    starts = [s for s in timing.starts(begin, now + dt.timedelta(seconds=1))][-limit:]
    if b["cancelled"]:
        cancelled = dt.datetime.fromtimestamp(b["cancelled"], dt.UTC)
        starts = [s for s in starts if s <= cancelled]
    speakers = resolve_targets(db, b["targets"])
    hamlets = dict(db.execute("SELECT id, hamlet FROM devices").fetchall())
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for r in db.execute("SELECT device, occurrence, status, reason, scheduled, started, ended,"
                        " played_s FROM playback_receipts WHERE broadcast_id = ?", (b["id"],)):
        stored[(r[0], r[1])] = {"status": r[2], "reason": r[3], "started": r[5],
                                "ended": r[6], "played_s": r[7]}
    out = []
    for start in starts:
        occ = occurrence_id(b["id"], start)
        devices = sorted(set(speakers) | {d for d, o in stored if o == occ})
        over = start + dt.timedelta(seconds=timing.duration_s + 60) < now
        rows = []
        for device in devices:
            got = stored.get((device, occ))
            if got is None:
                got = {"status": "no_receipt" if over else "pending",
                       "reason": "no receipt yet (speaker offline?)" if over else None,
                       "started": None, "ended": None, "played_s": None}
            rows.append({"device": device, "hamlet": hamlets.get(device), **got})
        out.append({"occurrence": occ, "scheduled": format_ts(start), "speakers": rows})
    return out


def receipts_csv(db: sqlite_utils.Database, broadcast_id: int | str) -> str:
    """The playback log of one broadcast, one row per occurrence and speaker, for the district."""
    b = get_broadcast(db, broadcast_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["broadcast", "title", "level", "occurrence", "scheduled", "device",
                     "hamlet", "status", "reason", "started", "ended", "played_s"])
    for occ in receipts(db, broadcast_id):
        for s in occ["speakers"]:
            writer.writerow([b["id"], b["title"], b["level"], occ["occurrence"],
                             occ["scheduled"], s["device"], s["hamlet"] or "", s["status"],
                             s["reason"] or "", s["started"] or "", s["ended"] or "",
                             "" if s["played_s"] is None else s["played_s"]])
    return out.getvalue()


LOG_COLUMNS = ("scheduled", "broadcast", "title", "level", "device", "hamlet", "status",
               "reason", "started", "ended", "played_s", "occurrence")


def playback_log(db: sqlite_utils.Database, since: str | None = None,
                 until: str | None = None, limit: int = 50_000) -> list[dict[str, Any]]:
    """Every receipt whose occurrence was scheduled in [since, until), oldest first:
    the district's playback log across all broadcasts."""
    where, params = [], []
    for value, clause in ((since, "r.scheduled >= ?"), (until, "r.scheduled < ?")):
        if value:
            where.append(clause)
            params.append(format_ts(parse_start(value)))
    sql = ("SELECT r.scheduled, r.broadcast_id, b.title, b.level, r.device, d.hamlet, r.status,"
           " r.reason, r.started, r.ended, r.played_s, r.occurrence FROM playback_receipts r"
           " LEFT JOIN broadcasts b ON b.id = r.broadcast_id"
           " LEFT JOIN devices d ON d.id = r.device")
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = db.execute(sql + " ORDER BY r.scheduled, r.device LIMIT ?",
                      (*params, limit)).fetchall()
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in rows]


def playback_log_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
