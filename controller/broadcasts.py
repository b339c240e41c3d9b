"""Broadcasts: scheduled and emergency items, each speaker's pushed schedule, receipts.

An item names an audio file, a start (local time), an optional recurrence,
its targets (all speakers, hamlets or chosen speakers) and a level
(normal < priority < emergency, Circular 39/2020). Non-emergency items are
refused in quiet hours; an item that overlaps another on a shared speaker is
refused unless the operator asks to ``order`` them (the later one plays
after the earlier one ends).

Each speaker gets the next ``horizon_days`` of its occurrences, with audio
hashes, volume and quiet hours, in the ``speaker`` key of its desired
config: retained on the broker and kept by the node, so it survives the node
going offline and the controller going away. A refresher slides the
horizon forward. Nodes report a ``playback`` receipt per occurrence.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlite_utils

from controller import audio_library, desired_config
from controller.desired_config import DesiredConfig
from controller.errors import InvalidRequest, NotFound
from controller.schedule import (
    QUIET_HOURS,
    TIMEZONE,
    ScheduleError,
    Timing,
    in_quiet_hours,
    overlaps,
    parse_hhmm,
    parse_rrule,
    parse_start,
)
from controller.writer import Writer
from wire.messages import MAX_PAYLOAD_BYTES, format_ts, utc_now
from wire.speaker import CONFIG_KEY, LEVELS, RECEIPT_STATUSES

log = logging.getLogger(__name__)

ATTENTION_TONE_S = 3.0  # played before every emergency (speaker_node.tones)
EMERGENCY_LEAD_S = 1.0  # nodes start on an absolute time, this far after the API call
EMERGENCY_REPEAT_S = 7200.0  # Decision 18/2021/QĐ-TTg: storm bulletins every 2 hours
EMERGENCY_EXPIRY_S = 24 * 3600.0
DEFAULT_VOLUME = 0.8
OVERLAP_POLICIES = ("reject", "order")
CHECK_DAYS = 60  # how far ahead quiet hours and overlaps are checked
LOOKBACK = dt.timedelta(days=1)  # past occurrences still pushed until their receipt comes


class Broadcasts:
    """Creates, cancels and pushes broadcast items."""

    def __init__(self, writer: Writer, reader: Callable[[], sqlite_utils.Database],
                 config: DesiredConfig, *, tz: str = TIMEZONE,
                 quiet_hours: tuple[dt.time, dt.time] = QUIET_HOURS,
                 horizon_days: float = 8.0, refresh_interval: float = 60.0):
        self.writer, self.reader, self.config = writer, reader, config
        self.tz, self.quiet_hours = tz, quiet_hours
        self.horizon = dt.timedelta(days=horizon_days)
        self.refresh_interval = refresh_interval
        self._pushed: dict[str, str] = {}
        self._push_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="schedule-refresh",
                                        daemon=True)
        row = reader().execute(
            "SELECT value FROM speaker_settings WHERE key = 'quiet_hours'").fetchone()
        if row is not None:
            q0, q1 = json.loads(row[0])
            self.quiet_hours = (parse_hhmm(q0), parse_hhmm(q1))

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self.push()
            except Exception:
                log.exception("schedule refresh failed")

    # -- operator actions -----------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a scheduled item, then push the affected speakers."""
        db = self.reader()
        audio = _audio(db, body.get("audio_id"))
        level = body.get("level", "normal")
        if level not in LEVELS:
            raise InvalidRequest(f"level {level!r}: expected one of {LEVELS}")
        overlap = body.get("overlap", "reject")
        if overlap not in OVERLAP_POLICIES:
            raise InvalidRequest(f"overlap {overlap!r}: expected one of {OVERLAP_POLICIES}")
        start = parse_start(body.get("start"), self.tz)
        rrule = body.get("rrule") or None
        recurrence = parse_rrule(rrule) if rrule is not None else None
        duration = audio["duration_s"] + (ATTENTION_TONE_S if level == "emergency" else 0)
        repeat_s, expires = body.get("repeat_s"), body.get("expires")
        if repeat_s is not None and (not isinstance(repeat_s, int | float) or isinstance(
                repeat_s, bool) or repeat_s < 60):
            raise InvalidRequest(f"repeat_s {repeat_s!r}: expected at least 60 seconds")
        if repeat_s is not None and recurrence is not None:
            raise InvalidRequest("give either rrule or repeat_s, not both")
        timing = Timing(start, duration, recurrence, repeat_s,
                        parse_start(expires, self.tz) if expires else None)
        targets = _targets(body.get("targets", {"all": True}))
        speakers = resolve_targets(db, targets)
        now = utc_now()
        upcoming = list(timing.starts(now, now + dt.timedelta(days=CHECK_DAYS)))
        if not upcoming and not list(timing.starts(now, now + dt.timedelta(days=3660))):
            raise ScheduleError(f"start {body.get('start')} with this recurrence has no "
                                "occurrence in the future")
        if level != "emergency":
            self._check_quiet(upcoming, duration)
            if overlap == "reject":
                self._check_overlaps(db, upcoming, duration, set(speakers))
        row = {"title": body.get("title") or audio["title"], "audio_id": audio["id"],
               "level": level, "start": start.isoformat(), "rrule": recurrence.text
               if recurrence else None, "repeat_s": repeat_s,
               "expires": timing.expires.isoformat() if timing.expires else None,
               "targets": json.dumps(targets), "overlap": overlap, "status": "active",
               "created": time.time()}

        def task(db: sqlite_utils.Database) -> int:
            cursor = db.execute(
                f"INSERT INTO broadcasts ({', '.join(row)}) VALUES"
                f" ({', '.join('?' * len(row))})", tuple(row.values()))
            return int(cursor.lastrowid or 0)

        broadcast_id = self.writer.call(task)
        self.push(speakers)
        log.info("broadcast %s (%s, %s) scheduled for %d speakers", broadcast_id, row["title"],
                 level, len(speakers))
        return get_broadcast(self.reader(), broadcast_id)

    def emergency(self, body: dict[str, Any]) -> dict[str, Any]:
        """An emergency now: attention tone, every ``repeat_s`` until it expires."""
        lead = dt.timedelta(seconds=float(body.get("lead_s", EMERGENCY_LEAD_S)))
        repeat_s = float(body.get("repeat_s", EMERGENCY_REPEAT_S))
        if repeat_s < 60:
            raise InvalidRequest(f"repeat_s {repeat_s}: expected at least 60 seconds")
        expires_in = float(body.get("expires_in_s", EMERGENCY_EXPIRY_S))
        now = utc_now()
        item = {**body, "level": "emergency", "start": format_ts(now + lead),
                "repeat_s": repeat_s, "expires": format_ts(now + dt.timedelta(
                    seconds=expires_in)), "rrule": None}
        for key in ("lead_s", "expires_in_s"):
            item.pop(key, None)
        return self.create(item)

    def cancel(self, broadcast_id: int | str) -> dict[str, Any]:
        """Cancel an item: removed from every speaker's schedule (a playing one stops)."""
        record = get_broadcast(self.reader(), broadcast_id)
        self.writer.call(lambda db: db.execute(
            "UPDATE broadcasts SET status = 'cancelled', cancelled = ? WHERE id = ?",
            (time.time(), record["id"])))
        self.push(resolve_targets(self.reader(), record["targets"]))
        return get_broadcast(self.reader(), record["id"])

    def set_volume(self, scope: str, key: str, volume: Any) -> dict[str, Any]:
        """Volume (0..1) of a hamlet's speakers or of one speaker; the speaker's wins."""
        if scope not in ("hamlet", "speaker"):
            raise InvalidRequest(f"volume scope {scope!r}: expected hamlet or speaker")
        if not isinstance(volume, int | float) or isinstance(volume, bool) or not (
                0 <= volume <= 1):
            raise InvalidRequest(f"volume {volume!r}: expected a number from 0 to 1")
        targets = {"hamlets": [key]} if scope == "hamlet" else {"speakers": [key]}
        speakers = resolve_targets(self.reader(), targets)
        self.writer.call(lambda db: db.execute(
            "INSERT OR REPLACE INTO speaker_volumes (scope, key, volume) VALUES (?, ?, ?)",
            (scope, key, float(volume))))
        self.push(speakers)
        return {"scope": scope, "key": key, "volume": float(volume), "speakers": speakers}

    def set_quiet_hours(self, begin: Any, end: Any) -> dict[str, Any]:
        """Change the nightly quiet hours (local time) for every speaker; return them with
        the active items that now fall in them (the speakers will skip those)."""
        quiet = (parse_hhmm(begin), parse_hhmm(end))
        if quiet[0] == quiet[1]:
            raise InvalidRequest("quiet hours must not begin and end at the same time")
        text = [t.strftime("%H:%M") for t in quiet]
        self.writer.call(lambda db: db.execute(
            "INSERT OR REPLACE INTO speaker_settings (key, value) VALUES ('quiet_hours', ?)",
            (json.dumps(text),)))
        self.quiet_hours = quiet
        self.push()
        db, now = self.reader(), utc_now()
        clashing = []
        for b in active_broadcasts(db):
            if b["level"] == "emergency":
                continue
            timing = _timing(db, b, self.tz)
            if any(in_quiet_hours(s, timing.duration_s, self.tz, quiet)
                   for s in timing.starts(now, now + dt.timedelta(days=CHECK_DAYS))):
                clashing.append(b["id"])
        return {"quiet_hours": text, "items_now_in_quiet_hours": clashing}

    def _check_quiet(self, starts: list[dt.datetime], duration: float) -> None:
        for start in starts:
            if in_quiet_hours(start, duration, self.tz, self.quiet_hours):
                local = start.astimezone(parse_start("2000-01-01T00:00", self.tz).tzinfo)
                q0, q1 = (t.strftime("%H:%M") for t in self.quiet_hours)
                raise ScheduleError(
                    f"the occurrence at {local:%Y-%m-%d %H:%M} local time falls in quiet hours "
                    f"({q0}–{q1}); only emergencies may play then")

    def _check_overlaps(self, db: sqlite_utils.Database, starts: list[dt.datetime],
                        duration: float, speakers: set[str]) -> None:
        now = utc_now()
        until = now + dt.timedelta(days=CHECK_DAYS)
        for other in active_broadcasts(db):
            shared = speakers & set(resolve_targets(db, other["targets"]))
            if not shared or other["level"] == "emergency":
                continue
            timing = _timing(db, other, self.tz)
            clash = overlaps(starts, duration, list(timing.starts(now, until)),
                             timing.duration_s)
            if clash:
                raise ScheduleError(
                    f"overlaps broadcast {other['id']} ({other['title']}) at {format_ts(clash[0])}"
                    f" on {len(shared)} speaker(s) such as {sorted(shared)[0]}; choose another "
                    "time or send overlap='order' to play them one after the other")

    # -- what speakers get ----------------------------------------------------------

    def _plan(self, db: sqlite_utils.Database, now: dt.datetime) -> list[tuple[
            set[str], list[dict[str, Any]]]]:
        """Every active item's speakers and its occurrences from a day back to the horizon,
        computed once. Recent past ones stay so that a speaker that was off through them
        reports them skipped (offline past the item's end) when it returns."""
        until = now + self.horizon
        since = now - LOOKBACK
        plan = []
        for b in active_broadcasts(db):
            timing = _timing(db, b, self.tz)
            audio = audio_library.get_audio(db, b["audio_id"])
            items = [{"id": occurrence_id(b["id"], start), "broadcast": b["id"],
                      "title": b["title"][:80], "start": format_ts(start), "level": b["level"],
                      "sha256": audio["sha256"], "bytes": audio["bytes"],
                      "duration_s": audio["duration_s"], "order": b["overlap"] == "order"}
                     for start in timing.starts(since, until)]
            plan.append((set(resolve_targets(db, b["targets"])), items))
        return plan

    def schedule_for(self, db: sqlite_utils.Database, speaker: str,
                     plan: list[tuple[set[str], list[dict[str, Any]]]] | None = None,
                     now: dt.datetime | None = None) -> dict[str, Any]:
        """The ``speaker`` section of one speaker's desired config."""
        now = now or utc_now()
        if plan is None:
            plan = self._plan(db, now)
        since = format_ts(now - LOOKBACK)
        done = {r[0] for r in db.execute(
            "SELECT occurrence FROM playback_receipts WHERE device = ? AND scheduled >= ?",
            (speaker, since))}
        row = db.execute("SELECT created FROM devices WHERE id = ?", (speaker,)).fetchone()
        installed = format_ts(dt.datetime.fromtimestamp(row[0] if row else 0, dt.UTC))
        current = format_ts(now)
        items = sorted((i for speakers, occ in plan if speaker in speakers for i in occ
                        if i["id"] not in done and (i["start"] >= installed
                                                    or i["start"] >= current)),
                       key=lambda i: i["start"])
        section = {"volume": speaker_volume(db, speaker), "tz": self.tz,
                   "quiet_hours": [t.strftime("%H:%M") for t in self.quiet_hours],
                   "horizon_end": format_ts(now + self.horizon), "items": items}
        while len(json.dumps(section).encode()) > MAX_PAYLOAD_BYTES - 4096 and items:
            dropped = items.pop()  # too many for one message: shorten the horizon
            section["horizon_end"] = dropped["start"]
        return section

    def push(self, speakers: list[str] | None = None) -> int:
        """Send changed schedules to ``speakers`` (default all); return how many were sent.
        The new configs are written in one group commit, then published."""
        db = self.reader()
        if speakers is None:
            speakers = resolve_targets(db, {"all": True})
        with self._push_lock:
            now = utc_now()
            plan = self._plan(db, now)
            changed: dict[str, dict[str, Any]] = {}
            keys: dict[str, str] = {}
            for speaker in speakers:
                section = self.schedule_for(db, speaker, plan, now)
                key = json.dumps({**section, "horizon_end": None}, sort_keys=True)
                if self._pushed.get(speaker) == key:
                    continue
                current = desired_config.get_desired(db, speaker)["config"]
                changed[speaker] = {**current, CONFIG_KEY: section}
                keys[speaker] = key
            self.config.set_many(changed)
            self._pushed.update(keys)
        return len(changed)


def occurrence_id(broadcast_id: int, start: dt.datetime) -> str:
    """Stable name of one occurrence: ``<broadcast>@<UTC start>``."""
    return f"{broadcast_id}@{start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def _audio(db: sqlite_utils.Database, audio_id: Any) -> dict[str, Any]:
    if not isinstance(audio_id, int) or isinstance(audio_id, bool):
        raise InvalidRequest(f"audio_id {audio_id!r}: expected the id of an uploaded audio file")
    try:
        return audio_library.get_audio(db, audio_id)
    except NotFound as exc:
        raise InvalidRequest(str(exc)) from None


def _targets(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidRequest(f"targets {value!r}: expected one of {{'all': true}}, "
                             "{'hamlets': [...]} or {'speakers': [...]}")
    (kind, names), = value.items()
    if kind == "all" and names is True:
        return {"all": True}
    if kind in ("hamlets", "speakers") and isinstance(names, list) and names and all(
            isinstance(n, str) and n for n in names):
        return {kind: sorted(set(names))}
    raise InvalidRequest(f"targets {value!r}: expected {{'all': true}}, {{'hamlets': [names]}} "
                         "or {'speakers': [ids]} with at least one name")


def resolve_targets(db: sqlite_utils.Database, targets: dict[str, Any]) -> list[str]:
    """The approved speaker ids a target names; unknown names are an error."""
    rows = db.execute("SELECT id, hamlet FROM devices WHERE role = 'speaker'"
                      " AND status = 'approved' ORDER BY id").fetchall()
    if targets.get("all"):
        return [r[0] for r in rows]
    if "hamlets" in targets:
        known = {r[1] for r in rows}
        missing = [h for h in targets["hamlets"] if h not in known]
        if missing:
            raise InvalidRequest(f"no speakers in hamlet(s) {missing}; known hamlets: "
                                 f"{sorted(h for h in known if h)}")
        return [r[0] for r in rows if r[1] in targets["hamlets"]]
    known_ids = {r[0] for r in rows}
    missing = [s for s in targets["speakers"] if s not in known_ids]
    if missing:
        raise InvalidRequest(f"no approved speaker(s) {missing}")
    return sorted(targets["speakers"])


def speaker_volume(db: sqlite_utils.Database, speaker: str) -> float:
    row = db.execute(
        "SELECT v.volume FROM speaker_volumes v WHERE v.scope = 'speaker' AND v.key = ?"
        " UNION ALL SELECT v.volume FROM speaker_volumes v JOIN devices d ON d.hamlet = v.key"
        " WHERE v.scope = 'hamlet' AND d.id = ?", (speaker, speaker)).fetchone()
    return float(row[0]) if row else DEFAULT_VOLUME


def _timing(db: sqlite_utils.Database, b: dict[str, Any], tz: str) -> Timing:
    audio = audio_library.get_audio(db, b["audio_id"])
    duration = audio["duration_s"] + (ATTENTION_TONE_S if b["level"] == "emergency" else 0)
    return Timing(parse_start(b["start"], tz), duration,
                  parse_rrule(b["rrule"]) if b["rrule"] else None, b["repeat_s"],
                  parse_start(b["expires"], tz) if b["expires"] else None)


_COLUMNS = ("id", "title", "audio_id", "level", "start", "rrule", "repeat_s", "expires",
            "targets", "overlap", "status", "created", "cancelled")


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(_COLUMNS, r, strict=True))
    record["targets"] = json.loads(record["targets"])
    return record


def active_broadcasts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM broadcasts WHERE status = 'active'"
                      " ORDER BY id").fetchall()
    return [_row(r) for r in rows]


def list_broadcasts(db: sqlite_utils.Database, include_cancelled: bool = False) -> list[
        dict[str, Any]]:
    where = "" if include_cancelled else " WHERE status = 'active'"
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM broadcasts{where}"
                      " ORDER BY id DESC").fetchall()
    return [_row(r) for r in rows]


def get_broadcast(db: sqlite_utils.Database, broadcast_id: int | str) -> dict[str, Any]:
    row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM broadcasts WHERE id = ?",
                     (broadcast_id,)).fetchone()
    if row is None:
        raise NotFound(f"no broadcast {broadcast_id!r}")
    return _row(row)


# -- receipts ---------------------------------------------------------------------------

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
    timing = _timing(db, b, tz)
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
                 until: str | None = None) -> list[dict[str, Any]]:
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
    rows = db.execute(sql + " ORDER BY r.scheduled, r.device", params).fetchall()
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in rows]


def playback_log_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def migrate_broadcasts(db: sqlite_utils.Database) -> None:
    """Schema: broadcasts, per-speaker/hamlet volumes, playback receipts."""
    for statement in (
        """CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,
            audio_id INTEGER NOT NULL REFERENCES audio(id), level TEXT NOT NULL,
            start TEXT NOT NULL, rrule TEXT, repeat_s REAL, expires TEXT,
            targets TEXT NOT NULL, overlap TEXT NOT NULL, status TEXT NOT NULL,
            created REAL NOT NULL, cancelled REAL)""",
        """CREATE TABLE speaker_volumes (
            scope TEXT NOT NULL, key TEXT NOT NULL, volume REAL NOT NULL,
            PRIMARY KEY (scope, key))""",
        """CREATE TABLE playback_receipts (
            device TEXT NOT NULL, occurrence TEXT NOT NULL, broadcast_id INTEGER,
            status TEXT NOT NULL, reason TEXT, scheduled TEXT, started TEXT, ended TEXT,
            played_s REAL, event_id TEXT NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY (device, occurrence))""",
        "CREATE INDEX playback_receipts_broadcast ON playback_receipts (broadcast_id)",
        "CREATE TABLE speaker_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ):
        db.execute(statement)

