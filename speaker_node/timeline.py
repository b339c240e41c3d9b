"""The node's schedule: occurrences parsed from the ``speaker`` section of desired config."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speaker_node.errors import ScheduleError
from wire.errors import MessageError
from wire.messages import parse_ts
from wire.speaker import LEVELS, in_quiet_hours

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
DEFAULT_QUIET = ("21:00", "05:30")


@dataclasses.dataclass(frozen=True)
class Occurrence:
    """One play of one item on this speaker."""

    id: str
    broadcast: int
    title: str
    start: dt.datetime  # UTC
    level: str
    sha256: str
    bytes: int
    duration_s: float
    order: bool = False

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)

    @property
    def emergency(self) -> bool:
        return self.level == "emergency"

    def summary(self) -> dict[str, Any]:
        return {"occurrence": self.id, "broadcast": self.broadcast, "title": self.title,
                "level": self.level, "scheduled": _ts(self.start)}


def _ts(when: dt.datetime) -> str:
    from wire.messages import format_ts
    return format_ts(when)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A parsed ``speaker`` section: occurrences by start, volume, zone and quiet hours."""

    items: tuple[Occurrence, ...] = ()
    volume: float = 0.8
    tz: str = DEFAULT_TZ
    quiet_hours: tuple[dt.time, dt.time] = (dt.time(21, 0), dt.time(5, 30))

    def in_quiet_hours(self, start: dt.datetime, duration_s: float) -> bool:
        return in_quiet_hours(start, duration_s, self.tz, self.quiet_hours)

    @property
    def shas(self) -> dict[str, int]:
        return {o.sha256: o.bytes for o in self.items}


def parse_schedule(section: Any) -> Schedule:
    """Check and convert a section; raise :class:`ScheduleError` naming what is wrong."""
    if not isinstance(section, dict):
        raise ScheduleError(f"speaker config must be an object, not {type(section).__name__}")
    volume = section.get("volume", 0.8)
    if not isinstance(volume, int | float) or not 0 <= volume <= 1:
        raise ScheduleError(f"volume {volume!r}: expected 0..1")
    tz = section.get("tz", DEFAULT_TZ)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"time zone {tz!r} is unknown") from None
    quiet = section.get("quiet_hours", DEFAULT_QUIET)
    try:
        quiet_hours = (dt.time.fromisoformat(quiet[0]), dt.time.fromisoformat(quiet[1]))
    except (TypeError, ValueError, IndexError):
        raise ScheduleError(f"quiet_hours {quiet!r}: expected two HH:MM times") from None
    items = section.get("items", [])
    if not isinstance(items, list):
        raise ScheduleError("items must be a list")
    parsed = tuple(sorted((_occurrence(i) for i in items), key=lambda o: (o.start, -o.rank)))
    return Schedule(parsed, float(volume), tz, quiet_hours)


#: A rendition's largest size: 3 hours of 48 kHz mono 16-bit audio, plus its header.
MAX_AUDIO_BYTES = 3 * 3600 * 48_000 * 2 + 1024


def _size(raw: Any) -> int:
    size = raw["bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_AUDIO_BYTES:
        raise ScheduleError(f"item {raw.get('id')!r} bytes {size!r}: expected 1..{MAX_AUDIO_BYTES}")
    return size


def _occurrence(raw: Any) -> Occurrence:
    try:
        level = raw["level"]
        if level not in LEVELS:
            raise ScheduleError(f"item {raw.get('id')!r} level {level!r}: expected {LEVELS}")
        sha = str(raw["sha256"])
        if len(sha) != 64 or sha.strip("0123456789abcdef"):
            raise ScheduleError(f"item {raw.get('id')!r} sha256 {sha!r}: expected 64 hex digits")
        return Occurrence(id=str(raw["id"]), broadcast=int(raw["broadcast"]),
                          title=str(raw.get("title", "")), start=parse_ts(raw["start"]),
                          level=level, sha256=sha, bytes=_size(raw),
                          duration_s=float(raw["duration_s"]), order=bool(raw.get("order")))
    except (KeyError, TypeError, ValueError, MessageError) as exc:
        if isinstance(exc, ScheduleError):
            raise
        raise ScheduleError(f"schedule item {raw!r} is malformed: {exc}") from None
