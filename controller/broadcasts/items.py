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

import datetime as dt
import json
import logging
import threading
import time
from typing import Any

import sqlite_utils

from controller.broadcasts import audio_library
from controller.broadcasts.schedule import (
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
from controller.db.connection import ReaderPool
from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t, message_of
from controller.fleet import desired_config
from controller.fleet.desired_config import DesiredConfig
from wire.messages import MAX_PAYLOAD_BYTES, format_ts, utc_now
from wire.speaker import CONFIG_KEY, LEVELS

log = logging.getLogger(__name__)

ATTENTION_TONE_S = 3.0  # played before every emergency (speaker_node.tones)
EMERGENCY_LEAD_S = 1.0  # nodes start on an absolute time, this far after the API call
EMERGENCY_REPEAT_S = 7200.0  # Decision 18/2021/QĐ-TTg: storm bulletins every 2 hours
EMERGENCY_EXPIRY_S = 24 * 3600.0
MIN_REPEAT_S = 300.0  # a bulletin repeated more often than every 5 minutes is a loop
MAX_REPEATS = 200  # occurrences of a repeating item: each is pushed to every speaker
MAX_LEAD_S = 60.0
DEFAULT_VOLUME = 0.8
OVERLAP_POLICIES = ("reject", "order")
CHECK_DAYS = 60  # how far ahead quiet hours and overlaps are checked
LOOKBACK = dt.timedelta(days=1)  # past occurrences still pushed until their receipt comes


class Broadcasts:
    """Creates, cancels and pushes broadcast items."""

    def __init__(self, writer: Writer, readers: ReaderPool,
                 config: DesiredConfig, *, tz: str = TIMEZONE,
                 quiet_hours: tuple[dt.time, dt.time] = QUIET_HOURS,
                 horizon_days: float = 8.0, refresh_interval: float = 60.0):
        self.writer, self.readers, self.config = writer, readers, config
        self.tz, self.quiet_hours = tz, quiet_hours
        self.horizon = dt.timedelta(days=horizon_days)
        self.refresh_interval = refresh_interval
        self._pushed: dict[str, str] = {}
        self._push_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="schedule-refresh",
                                        daemon=True)
        row = readers.execute(
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
        with self.readers.connection() as db:
            row, speakers = self._check(db, body)

        def task(db: sqlite_utils.Database) -> int:
            cursor = db.execute(
                f"INSERT INTO broadcasts ({', '.join(row)}) VALUES"
                f" ({', '.join('?' * len(row))})", tuple(row.values()))
            return int(cursor.lastrowid or 0)

        broadcast_id = self.writer.call(task)
        self.push(speakers)
        log.info("broadcast %s (%s, %s) scheduled for %d speakers", broadcast_id, row["title"],
                 row["level"], len(speakers))
        return self.get(broadcast_id)

    def get(self, broadcast_id: int | str) -> dict[str, Any]:
        with self.readers.connection() as db:
            return get_broadcast(db, broadcast_id)

    def check(self, body: dict[str, Any], shown: int = 10) -> dict[str, Any]:
        """A dry run of :meth:`create`: the same checks, nothing stored or pushed. Quiet-hour
        and overlap conflicts (and a recurrence that never plays) come back as
        ``problems``; a body that is wrong in itself raises as ``create`` would."""
        problems: list[str] = []
        speakers: list[str] = []
        with self.readers.connection() as db:
            try:
                row, speakers = self._check(db, body)
            except ScheduleError as exc:
                problems.append(message_of(exc))  # a Text: the web layer may translate it
                row = None
            if row is None:
                return {"ok": False, "problems": problems, "speakers": speakers, "next": []}
            timing = timing_of(db, {**row, "targets": json.loads(row["targets"])}, self.tz)
        now = utc_now()
        upcoming = [format_ts(s) for s, _ in zip(
            timing.starts(now, now + dt.timedelta(days=3660)), range(shown), strict=False)]
        return {"ok": True, "problems": [], "speakers": speakers, "next": upcoming}

    def _check(self, db: sqlite_utils.Database,
               body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The row to store for ``body`` and the speakers it targets; raise if it cannot be."""
        audio = _audio(db, body.get("audio_id"))
        level = body.get("level", "normal")
        if level not in LEVELS:
            raise InvalidRequest(_t("level {level!r}: expected one of {levels}"), level=level,
                                 levels=LEVELS)
        overlap = body.get("overlap", "reject")
        if overlap not in OVERLAP_POLICIES:
            raise InvalidRequest(_t("overlap {overlap!r}: expected one of {policies}"),
                                 overlap=overlap, policies=OVERLAP_POLICIES)
        start = parse_start(body.get("start"), self.tz)
        rrule = body.get("rrule") or None
        recurrence = parse_rrule(rrule) if rrule is not None else None
        if recurrence is not None and not recurrence.occurs(start):
            raise ScheduleError(_t("recurrence {rule} from {start} meets no date within 400 "
                                   "years: it would never play"), rule=recurrence.text,
                                start=body.get("start"))
        duration = audio["duration_s"] + (ATTENTION_TONE_S if level == "emergency" else 0)
        repeat_s, expires = body.get("repeat_s"), body.get("expires")
        if repeat_s is not None and recurrence is not None:
            raise InvalidRequest(_t("give either rrule or repeat_s, not both"))
        if repeat_s is not None:
            check_repeats(repeat_s, parse_start(expires, self.tz) if expires else None, start)
        timing = Timing(start, duration, recurrence, repeat_s,
                        parse_start(expires, self.tz) if expires else None)
        targets = _targets(body.get("targets", {"all": True}))
        speakers = resolve_targets(db, targets)
        now = utc_now()
        upcoming = list(timing.starts(now, now + dt.timedelta(days=CHECK_DAYS)))
        if not upcoming and not list(timing.starts(now, now + dt.timedelta(days=3660))):
            raise ScheduleError(_t("start {start} with this recurrence has no occurrence in the"
                                   " future"), start=body.get("start"))
        if level != "emergency":
            self._check_quiet(upcoming, duration)
            if overlap == "reject":
                self._check_overlaps(db, upcoming, duration, set(speakers), level)
        row = {"title": body.get("title") or audio["title"], "audio_id": audio["id"],
               "level": level, "start": start.isoformat(), "rrule": recurrence.text
               if recurrence else None, "repeat_s": repeat_s,
               "expires": timing.expires.isoformat() if timing.expires else None,
               "targets": json.dumps(targets), "overlap": overlap, "status": "active",
               "created": time.time()}
        return row, speakers

    def emergency(self, body: dict[str, Any]) -> dict[str, Any]:
        """An emergency now: attention tone, every ``repeat_s`` until it expires, is
        cancelled or is replaced (``replaces``: the id of the emergency it supersedes, as
        Decision 18/2021 rebroadcasts a storm bulletin until the next one replaces it)."""
        replaces = body.get("replaces")
        if replaces is not None:
            old = self.get(replaces)
            if old["level"] != "emergency" or old["status"] != "active":
                raise InvalidRequest(_t("replaces {replaces!r}: not an active emergency"),
                                     replaces=replaces)
        self._check_one_emergency(_targets(body.get("targets", {"all": True})), replaces)
        lead_s = _number(body.get("lead_s", EMERGENCY_LEAD_S), "lead_s", 0, MAX_LEAD_S)
        lead = dt.timedelta(seconds=lead_s)
        repeat_s = _number(body.get("repeat_s", EMERGENCY_REPEAT_S), "repeat_s",
                           MIN_REPEAT_S, 7 * 86400)
        expires_in = _number(body.get("expires_in_s", EMERGENCY_EXPIRY_S), "expires_in_s",
                             1, 7 * 86400)
        now = utc_now()
        check_repeats(repeat_s, now + dt.timedelta(seconds=expires_in), now)
        item = {**body, "level": "emergency", "start": format_ts(now + lead),
                "repeat_s": repeat_s, "expires": format_ts(now + dt.timedelta(
                    seconds=expires_in)), "rrule": None}
        for key in ("lead_s", "expires_in_s", "replaces"):
            item.pop(key, None)
        created = self.create(item)
        if replaces is not None:
            self.cancel(replaces)  # after the new one is out: no gap in the warnings
        return created

    def _check_one_emergency(self, targets: dict[str, Any], replaces: Any) -> None:
        """One active emergency per speaker: a new one on a speaker that already has one
        must say it replaces it (a storm bulletin supersedes the last), else it is
        refused naming it. An operator pressing twice, or a script in a loop, cannot
        stack emergencies, each repeating on every speaker."""
        with self.readers.connection() as db:
            speakers = set(resolve_targets(db, targets))
            for b in active_broadcasts(db):
                if b["level"] != "emergency" or b["id"] == replaces:
                    continue
                shared = speakers & set(resolve_targets(db, b["targets"]))
                if shared:
                    raise InvalidRequest(
                        _t("emergency {id} ({title!r}) is still active on {count} of these "
                           "speakers: send this one with \"replaces\": {id} to supersede it, "
                           "or cancel it first"), id=b["id"], title=b["title"],
                        count=len(shared))

    def cancel(self, broadcast_id: int | str) -> dict[str, Any]:
        """Cancel an item: removed from every speaker's schedule (a playing one stops)."""
        record = self.get(broadcast_id)
        self.writer.call(lambda db: db.execute(
            "UPDATE broadcasts SET status = 'cancelled', cancelled = ? WHERE id = ?",
            (time.time(), record["id"])))
        with self.readers.connection() as db:
            speakers = resolve_targets(db, record["targets"])
        self.push(speakers)
        return self.get(record["id"])

    def set_volume(self, scope: str, key: str, volume: Any) -> dict[str, Any]:
        """Volume (0..1) of a hamlet's speakers or of one speaker; the speaker's wins."""
        if scope not in ("hamlet", "speaker"):
            raise InvalidRequest(_t("volume scope {scope!r}: expected hamlet or speaker"),
                                 scope=scope)
        if not isinstance(volume, int | float) or isinstance(volume, bool) or not (
                0 <= volume <= 1):
            raise InvalidRequest(_t("volume {volume!r}: expected a number from 0 to 1"),
                                 volume=volume)
        targets = {"hamlets": [key]} if scope == "hamlet" else {"speakers": [key]}
        with self.readers.connection() as db:
            speakers = resolve_targets(db, targets)
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
            raise InvalidRequest(_t("quiet hours must not begin and end at the same time"))
        text = [t.strftime("%H:%M") for t in quiet]
        self.writer.call(lambda db: db.execute(
            "INSERT OR REPLACE INTO speaker_settings (key, value) VALUES ('quiet_hours', ?)",
            (json.dumps(text),)))
        self.quiet_hours = quiet
        self.push()
        now = utc_now()
        clashing = []
        with self.readers.connection() as db:
            for b in active_broadcasts(db):
                if b["level"] == "emergency":
                    continue
                timing = timing_of(db, b, self.tz)
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
                    _t("the occurrence at {when} local time falls in quiet hours ({begin}–{end});"
                       " only emergencies may play then"), when=f"{local:%Y-%m-%d %H:%M}",
                    begin=q0, end=q1)

    def _check_overlaps(self, db: sqlite_utils.Database, starts: list[dt.datetime],
                        duration: float, speakers: set[str], level: str) -> None:
        """Items of the same level may not overlap on a speaker; of different levels they
        may: the higher pre-empts the lower, which resumes after (Circular 39/2020)."""
        now = utc_now()
        until = now + dt.timedelta(days=CHECK_DAYS)
        for other in active_broadcasts(db):
            if other["level"] != level:
                continue
            shared = speakers & set(resolve_targets(db, other["targets"]))
            if not shared:
                continue
            timing = timing_of(db, other, self.tz)
            clash = overlaps(starts, duration, list(timing.starts(now, until)),
                             timing.duration_s)
            if clash:
                raise ScheduleError(
                    _t("overlaps broadcast {id} ({title}) at {when} on {count} speaker(s) such as"
                       " {speaker}; choose another time or send overlap='order' to play them one"
                       " after the other"), id=other["id"], title=other["title"],
                    when=format_ts(clash[0]), count=len(shared), speaker=sorted(shared)[0])

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
            timing = timing_of(db, b, self.tz)
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
        # Too many for one message: shorten the horizon. Each item's size is counted
        # once (re-encoding the section per dropped item took seconds for thousands).
        room = MAX_PAYLOAD_BYTES - 4096 - len(json.dumps(section).encode())
        if room < 0:
            used = len(json.dumps({**section, "items": []}).encode())
            for keep, item in enumerate(items):
                used += len(json.dumps(item).encode()) + 2  # ", " between items
                if used > MAX_PAYLOAD_BYTES - 4096:
                    section["horizon_end"] = item["start"]
                    del items[keep:]
                    break
        return section

    def push(self, speakers: list[str] | None = None) -> int:
        """Send changed schedules to ``speakers`` (default all); return how many were sent.
        The new configs are written in one group commit, then published."""
        with self._push_lock, self.readers.connection() as db:
            if speakers is None:
                speakers = resolve_targets(db, {"all": True})
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


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise InvalidRequest(_t("{name} {value!r}: expected a number from {lo:g} to {hi:g}"),
                             name=name, value=value, lo=lo, hi=hi)
    return float(value)


def check_repeats(repeat_s: Any, expires: dt.datetime | None, start: dt.datetime) -> None:
    """A repeating item needs an end, a floor on its period and a bounded number of
    occurrences (each is pushed to every speaker it targets)."""
    _number(repeat_s, "repeat_s", MIN_REPEAT_S, 7 * 86400)
    if expires is None:
        raise InvalidRequest(_t("a repeating item (repeat_s) needs 'expires': when to stop"))
    count = (expires - start).total_seconds() / repeat_s
    if count > MAX_REPEATS:
        raise InvalidRequest(_t("repeat_s {repeat_s:g} until {until} makes {count:.0f} "
                                "occurrences: at most {most}; repeat less often or stop sooner"),
                             repeat_s=repeat_s, until=expires.isoformat(), count=count,
                             most=MAX_REPEATS)


def occurrence_id(broadcast_id: int, start: dt.datetime) -> str:
    """Stable name of one occurrence: ``<broadcast>@<UTC start>``."""
    return f"{broadcast_id}@{start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def _audio(db: sqlite_utils.Database, audio_id: Any) -> dict[str, Any]:
    if not isinstance(audio_id, int) or isinstance(audio_id, bool):
        raise InvalidRequest(_t("audio_id {audio_id!r}: expected the id of an uploaded audio"
                                " file"), audio_id=audio_id)
    try:
        return audio_library.get_audio(db, audio_id)
    except NotFound as exc:
        raise InvalidRequest(message_of(exc)) from None


def _targets(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidRequest(_t("targets {value!r}: expected one of {{'all': true}}, "
                                "{{'hamlets': [...]}} or {{'speakers': [...]}}"), value=value)
    (kind, names), = value.items()
    if kind == "all" and names is True:
        return {"all": True}
    if kind in ("hamlets", "speakers") and isinstance(names, list) and names and all(
            isinstance(n, str) and n for n in names):
        return {kind: sorted(set(names))}
    raise InvalidRequest(_t("targets {value!r}: expected {{'all': true}}, {{'hamlets': [names]}}"
                            " or {{'speakers': [ids]}} with at least one name"), value=value)


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
            raise InvalidRequest(_t("no speakers in hamlet(s) {missing}; known hamlets: {known}"),
                                 missing=missing, known=sorted(h for h in known if h))
        return [r[0] for r in rows if r[1] in targets["hamlets"]]
    known_ids = {r[0] for r in rows}
    missing = [s for s in targets["speakers"] if s not in known_ids]
    if missing:
        raise InvalidRequest(_t("no approved speaker(s) {missing}"), missing=missing)
    return sorted(targets["speakers"])


def speaker_volume(db: sqlite_utils.Database, speaker: str) -> float:
    row = db.execute(
        "SELECT v.volume FROM speaker_volumes v WHERE v.scope = 'speaker' AND v.key = ?"
        " UNION ALL SELECT v.volume FROM speaker_volumes v JOIN devices d ON d.hamlet = v.key"
        " WHERE v.scope = 'hamlet' AND d.id = ?", (speaker, speaker)).fetchone()
    return float(row[0]) if row else DEFAULT_VOLUME


def timing_of(db: sqlite_utils.Database, b: dict[str, Any], tz: str) -> Timing:
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
        raise NotFound(_t("no broadcast {id!r}"), id=broadcast_id)
    return _row(row)
