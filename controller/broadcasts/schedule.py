"""Broadcast times: start, RFC 5545 recurrence, quiet hours and overlaps. Pure; no I/O.

Times are local to the commune (Asia/Ho_Chi_Minh, no daylight saving) when
written without an offset; occurrences are returned in UTC, which is what
nodes receive and play against their own clock.

The recurrence subset is the one a radio operator needs: ``FREQ`` DAILY,
WEEKLY, MONTHLY or YEARLY, ``INTERVAL`` (every N weeks...), ``BYDAY``
(chosen weekdays), ``BYMONTHDAY`` (negative counts from the month's end, so
``-1`` is the last day, 29 February in leap years), ``BYMONTH``, and
``UNTIL`` or ``COUNT``. A month without the asked day is skipped, as
RFC 5545 says (``BYMONTHDAY=31`` plays in seven months a year).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from controller.errors import InvalidRequest, _t
from wire import speaker as speaker_rules

TIMEZONE = "Asia/Ho_Chi_Minh"
QUIET_HOURS = (dt.time(21, 0), dt.time(5, 30))
MAX_OCCURRENCES = 5000

_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_KEYS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "UNTIL", "COUNT")


class ScheduleError(InvalidRequest):
    """A start, recurrence or time window that cannot be scheduled; the message says why."""


_BAD_START = _t("start {value!r}: expected an ISO 8601 time such as 2026-12-01T06:30"
                " (local time)")


def parse_start(value: Any, tz: str = TIMEZONE) -> dt.datetime:
    """An ISO 8601 time; without an offset it is local time in ``tz``."""
    if not isinstance(value, str):
        raise ScheduleError(_BAD_START, value=value)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(_BAD_START, value=value) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return when


@dataclasses.dataclass(frozen=True)
class Recurrence:
    """A parsed ``RRULE``; :meth:`expand` lists its local start times."""

    text: str
    freq: str
    interval: int = 1
    byday: tuple[str, ...] = ()
    bymonthday: tuple[int, ...] = ()
    bymonth: tuple[int, ...] = ()
    until: dt.datetime | None = None
    count: int | None = None

    def rule(self, dtstart: dt.datetime) -> Any:
        from dateutil import rrule
        weekdays = [getattr(rrule, d) for d in self.byday] or None
        until = self.until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=dtstart.tzinfo)
        return rrule.rrule(
            getattr(rrule, self.freq), dtstart=dtstart, interval=self.interval,
            byweekday=weekdays, bymonthday=list(self.bymonthday) or None,
            bymonth=list(self.bymonth) or None, until=until, count=self.count)


    def occurs(self, dtstart: dt.datetime) -> bool:
        """Whether the rule from ``dtstart`` meets a date within 400 years (its UNTIL and
        COUNT aside); a rule that does not would never play.

        dateutil walks period after period until year 9999 looking for a rule that
        never matches (``FREQ=DAILY;INTERVAL=7;BYDAY=TU`` from a Monday: seconds of
        CPU). The calendar repeats every 400 years, weekdays included (146,097 days
        are 20,871 weeks; 4,800 months), so the same rule from the same date 400·k
        years on meets the same dates, shifted. Probed from between 9200 and 9600,
        dateutil gives up after 400 to 800 years of periods, not 8,000."""
        shift = (9200 - dtstart.year + 399) // 400 * 400
        probe = dataclasses.replace(self, until=None, count=1)
        return next(iter(probe.rule(dtstart.replace(year=dtstart.year + shift))), None) is not None


def parse_rrule(text: Any) -> Recurrence:
    """Parse ``FREQ=...;INTERVAL=...`` (an ``RRULE:`` prefix is allowed)."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(_t("recurrence {rule!r}: expected an RFC 5545 RRULE such as "
                               "FREQ=WEEKLY;BYDAY=MO,WE,FR"), rule=text)
    body = text.strip().removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep or key not in _KEYS:
            raise ScheduleError(_t("recurrence part {part!r}: expected KEY=VALUE with KEY one"
                                   " of {keys}"), part=part, keys=", ".join(_KEYS))
        if key in parts:
            raise ScheduleError(_t("recurrence repeats {key}"), key=key)
        parts[key] = value.strip().upper()
    freq = parts.get("FREQ")
    if freq not in _FREQS:
        raise ScheduleError(_t("recurrence FREQ={freq}: expected one of {freqs}"), freq=freq,
                            freqs=", ".join(_FREQS))
    if "UNTIL" in parts and "COUNT" in parts:
        raise ScheduleError(_t("recurrence has both UNTIL and COUNT: RFC 5545 allows one"))
    recurrence = Recurrence(
        text=body, freq=freq,
        interval=_int(parts, "INTERVAL", 1, 1, 520) or 1,
        byday=_days(parts.get("BYDAY")),
        bymonthday=_ints(parts.get("BYMONTHDAY"), "BYMONTHDAY", -31, 31),
        bymonth=_ints(parts.get("BYMONTH"), "BYMONTH", 1, 12),
        until=_until(parts.get("UNTIL")),
        count=_int(parts, "COUNT", None, 1, MAX_OCCURRENCES))
    _check_possible(recurrence)
    return recurrence


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _check_possible(rule: Recurrence) -> None:
    """Refuse at once a rule no date can meet (``BYMONTH=2;BYMONTHDAY=30``): expanding it
    would walk the calendar for years before finding nothing."""
    if not rule.bymonthday:
        return
    months = rule.bymonth or tuple(range(1, 13))
    if not any(abs(day) <= _MONTH_DAYS[month - 1] for month in months
               for day in rule.bymonthday):
        raise ScheduleError(_t("recurrence {rule}: no month among BYMONTH {months} has day(s)"
                               " {days}; it would never play"), rule=rule.text,
                            months=",".join(map(str, months)),
                            days=",".join(map(str, rule.bymonthday)))


def _int(parts: dict[str, str], key: str, default: int | None, lo: int, hi: int) -> int | None:
    if key not in parts:
        return default
    try:
        value = int(parts[key])
    except ValueError:
        raise ScheduleError(_t("recurrence {key}={value}: expected a whole number"), key=key,
                            value=parts[key]) from None
    if not lo <= value <= hi:
        raise ScheduleError(_t("recurrence {key}={value}: expected {lo}..{hi}"), key=key,
                            value=value, lo=lo, hi=hi)
    return value


def _ints(raw: str | None, key: str, lo: int, hi: int) -> tuple[int, ...]:
    if not raw:
        return ()
    values = tuple(_int({key: v}, key, None, lo, hi) or 0 for v in raw.split(","))
    if 0 in values:
        raise ScheduleError(_t("recurrence {key}=0: days count from 1 (or from -1 at the end)"),
                            key=key)
    return values


def _days(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    days = tuple(d.strip() for d in raw.split(","))
    for d in days:
        if d not in _DAYS:
            raise ScheduleError(_t("recurrence BYDAY={day}: expected weekdays among {days}"
                                   " (ordinals like 1MO are not supported)"), day=d,
                                days=",".join(_DAYS))
    return days


def _until(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    for pattern in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            when = dt.datetime.strptime(raw, pattern)
        except ValueError:
            continue
        if pattern.endswith("Z"):
            return when.replace(tzinfo=dt.UTC)
        if pattern == "%Y%m%d":
            when = when.replace(hour=23, minute=59, second=59)  # the whole last day
        return when
    raise ScheduleError(_t("recurrence UNTIL={until}: expected YYYYMMDD or YYYYMMDDTHHMMSSZ"),
                        until=raw)


@dataclasses.dataclass(frozen=True)
class Timing:
    """When one item plays: first start, recurrence or fixed repeat, end of repeats."""

    start: dt.datetime
    duration_s: float
    recurrence: Recurrence | None = None
    repeat_s: float | None = None  # emergencies: every N seconds ...
    expires: dt.datetime | None = None  # ... until then

    def starts(self, since: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
        """UTC start times of occurrences that are still playing at or after ``since``
        and start before ``until``."""
        lead = dt.timedelta(seconds=self.duration_s)
        for n, start in enumerate(self._all()):
            if n >= MAX_OCCURRENCES or start >= until:
                return
            if self.expires is not None and start >= self.expires:
                return
            if start + lead > since:
                yield start.astimezone(dt.UTC)

    def _all(self) -> Iterator[dt.datetime]:
        if self.recurrence is not None:
            yield from self.recurrence.rule(self.start)
        elif self.repeat_s:
            step = dt.timedelta(seconds=self.repeat_s)
            when = self.start
            while True:
                yield when
                when += step
        else:
            yield self.start


def in_quiet_hours(start: dt.datetime, duration_s: float, tz: str = TIMEZONE,
                   quiet: tuple[dt.time, dt.time] = QUIET_HOURS) -> bool:
    """True if any part of [start, start + duration) falls in the nightly quiet window."""
    return speaker_rules.in_quiet_hours(start, duration_s, tz, quiet)


def parse_hhmm(value: str) -> dt.time:
    """``HH:MM`` for settings such as quiet hours."""
    try:
        return dt.time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ScheduleError(_t("time of day {value!r}: expected HH:MM"), value=value) from None


def overlaps(a: list[dt.datetime], a_s: float, b: list[dt.datetime],
             b_s: float) -> list[dt.datetime]:
    """Starts in ``a`` whose [start, start + a_s) intersects an occurrence of ``b``."""
    found, j = [], 0
    da, db = dt.timedelta(seconds=a_s), dt.timedelta(seconds=b_s)
    for start in a:
        while j < len(b) and b[j] + db <= start:
            j += 1
        if j < len(b) and b[j] < start + da:
            found.append(start)
    return found
