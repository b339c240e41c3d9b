"""Security figures: what a hostile input costs the controller.

An impossible recurrence (one no date meets) must be refused in under 0.5 s:
dateutil alone walks the calendar to year 9999 looking for it (seconds of
CPU per rule). Measured on the controller's own check, parsing included
(``parse_rrule`` refuses a day no month has; ``Recurrence.occurs`` the
rest), worst of several such rules, next to a possible rule's check.
"""

from __future__ import annotations

import time

from controller.broadcasts.schedule import ScheduleError, parse_rrule, parse_start

IMPOSSIBLE = [  # (rule, local start): each meets no date
    ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "2026-11-30T06:00"),  # every 7th day from a Monday
    ("FREQ=DAILY;INTERVAL=14;BYMONTHDAY=13;BYDAY=FR", "2026-01-01T06:00"),  # Thursdays
    ("FREQ=MONTHLY;INTERVAL=12;BYMONTH=3", "2026-12-01T06:00"),  # every December
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "2026-01-01T06:00"),  # no 30 February
]
POSSIBLE = ("FREQ=WEEKLY;BYDAY=MO,WE,FR", "2026-11-30T06:00")


def _check_ms(rule: str, start: str, repeat: int = 3) -> float:
    """The best of ``repeat`` runs of parsing ``rule`` and asking whether it ever plays."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            parse_rrule(rule).occurs(parse_start(start))
        except ScheduleError:
            pass
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def run(quick: bool = False) -> list[tuple[str, float, str, str, str]]:
    worst = max(_check_ms(rule, start) for rule, start in IMPOSSIBLE)
    return [
        ("impossible_rrule_refusal", round(worst, 1), "ms", "<= 500",
         f"worst of {len(IMPOSSIBLE)} rules no date meets: parse and check, best of 3"),
        ("possible_rrule_check", round(_check_ms(*POSSIBLE), 2), "ms", "-",
         "baseline: a weekly rule's parse and check"),
    ]
