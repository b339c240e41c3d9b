"""Office hours: when the one-stop desk serves citizens, in the commune's time zone.

Written in config as a list of periods, e.g.
``[{"days": "mon-fri", "open": "07:00", "close": "11:30"}, ...]``. No
periods at all means always open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from kiosk.errors import KioskConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = {"vi": ("T2", "T3", "T4", "T5", "T6", "T7", "CN"),
             "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


@dataclasses.dataclass(frozen=True)
class Period:
    """Open from ``open`` to ``close`` (local wall time) on each of ``days`` (0 = Monday)."""

    days: frozenset[int]
    open: dt.time
    close: dt.time

    def covers(self, local: dt.datetime) -> bool:
        return local.weekday() in self.days and self.open <= local.time() < self.close


@dataclasses.dataclass(frozen=True)
class OfficeHours:
    """A set of periods; empty means the kiosk never closes."""

    periods: tuple[Period, ...] = ()

    def is_open(self, local: dt.datetime) -> bool:
        return not self.periods or any(p.covers(local) for p in self.periods)

    def describe(self, language: str = "vi") -> list[str]:
        """One line per period for the closed screen, e.g. ``T2–T6 07:00–11:30``."""
        names = DAY_NAMES.get(language, DAY_NAMES["vi"])
        lines = []
        for period in self.periods:
            days = sorted(period.days)
            if days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
                span = f"{names[days[0]]}–{names[days[-1]]}"
            else:
                span = ", ".join(names[d] for d in days)
            lines.append(f"{span} {period.open:%H:%M}–{period.close:%H:%M}")
        return lines


def parse_office_hours(raw: Any) -> OfficeHours:
    """Parse the config's ``office_hours`` list; raise :class:`KioskConfigError` if malformed."""
    if raw is None:
        return OfficeHours()
    if not isinstance(raw, list):
        raise KioskConfigError(f"office_hours {raw!r}: expected a list of periods")
    return OfficeHours(tuple(_period(item) for item in raw))


def _period(item: Any) -> Period:
    if not isinstance(item, dict) or not {"days", "open", "close"} <= set(item):
        raise KioskConfigError(
            f"office hours period {item!r}: expected {{days, open, close}}, "
            'e.g. {"days": "mon-fri", "open": "07:00", "close": "17:00"}')
    opens, closes = _time(item["open"]), _time(item["close"])
    if closes <= opens:
        raise KioskConfigError(f"office hours period {item!r}: close must be after open")
    return Period(_days(item["days"]), opens, closes)


def _days(text: Any) -> frozenset[int]:
    if not isinstance(text, str):
        raise KioskConfigError(f"office hours days {text!r}: expected e.g. 'mon-fri' or 'sat'")
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        try:
            start, end = DAYS.index(first), DAYS.index(last or first)
        except ValueError:
            raise KioskConfigError(
                f"office hours days {text!r}: expected day names from {DAYS}") from None
        if end < start:
            raise KioskConfigError(f"office hours days {text!r}: {part!r} runs backwards")
        days.update(range(start, end + 1))
    return frozenset(days)


def _time(text: Any) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except (TypeError, ValueError):
        raise KioskConfigError(f"office hours time {text!r}: expected HH:MM") from None
