"""Broadcast times: RFC 5545 recurrence subset, month ends, leap days, quiet hours, overlaps."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.broadcasts.schedule import (
    ScheduleError,
    Timing,
    in_quiet_hours,
    overlaps,
    parse_rrule,
    parse_start,
)

EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def local_starts(start: str, rrule: str | None = None, **kw) -> list[str]:
    timing = Timing(parse_start(start), 60.0, parse_rrule(rrule) if rrule else None, **kw)
    zone = parse_start("2026-01-01T00:00").tzinfo
    return [s.astimezone(zone).strftime("%Y-%m-%d %H:%M") for s in timing.starts(EPOCH, FAR)]


def test_recurrence_last_day_of_month_includes_leap_day():
    assert local_starts("2028-01-31T06:00", "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4") == [
        "2028-01-31 06:00", "2028-02-29 06:00", "2028-03-31 06:00", "2028-04-30 06:00"]


def test_recurrence_on_the_31st_skips_short_months():
    assert local_starts("2026-01-31T17:00", "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4") == [
        "2026-01-31 17:00", "2026-03-31 17:00", "2026-05-31 17:00", "2026-07-31 17:00"]


def test_recurrence_yearly_on_leap_day_waits_four_years():
    assert local_starts("2028-02-29T07:00", "FREQ=YEARLY;COUNT=2") == [
        "2028-02-29 07:00", "2032-02-29 07:00"]


def test_recurrence_every_two_weeks_on_chosen_weekdays_until_a_date():
    # 2026-11-27 is a Friday.
    rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;UNTIL=20261225"
    assert local_starts("2026-11-27T06:30", rule) == [
        "2026-11-27 06:30", "2026-12-07 06:30", "2026-12-11 06:30", "2026-12-21 06:30",
        "2026-12-25 06:30"]


def test_recurrence_daily_crosses_year_end_in_local_time():
    assert local_starts("2026-12-30T05:45", "FREQ=DAILY;COUNT=3") == [
        "2026-12-30 05:45", "2026-12-31 05:45", "2027-01-01 05:45"]


def test_local_time_is_ho_chi_minh_and_utc_is_what_nodes_get():
    start = parse_start("2026-12-01T06:30")
    assert start.utcoffset() == dt.timedelta(hours=7)
    (first,) = Timing(start, 60.0).starts(EPOCH, FAR)
    assert first == dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)


def test_emergency_repeats_every_two_hours_until_expiry():
    start = parse_start("2026-12-01T10:00")
    starts = local_starts("2026-12-01T10:00", repeat_s=7200.0,
                          expires=start + dt.timedelta(hours=5))
    assert starts == ["2026-12-01 10:00", "2026-12-01 12:00", "2026-12-01 14:00"]


@pytest.mark.parametrize("rule, message", [
    ("FREQ=HOURLY", "FREQ=HOURLY"),
    ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "both UNTIL and COUNT"),
    ("FREQ=WEEKLY;BYDAY=XX", "BYDAY=XX"),
    ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY=32"),
    ("FREQ=DAILY;INTERVAL=zero", "INTERVAL=ZERO"),
    ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS"),
    ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL=TOMORROW"),
    ("", "RRULE"),
])
def test_bad_recurrence_is_refused_naming_the_part(rule, message):
    with pytest.raises(ScheduleError, match=message):
        parse_rrule(rule)


def test_bad_start_is_refused_with_an_example():
    with pytest.raises(ScheduleError, match="2026-12-01T06:30"):
        parse_start("tomorrow morning")
    with pytest.raises(ValueError):  # ScheduleError is a ValueError for callers
        parse_start(None)


def test_quiet_hours_cover_the_night_and_its_edges():
    assert in_quiet_hours(parse_start("2026-12-01T03:15"), 60)  # the 03:15 relay incident
    assert in_quiet_hours(parse_start("2026-12-01T20:58"), 180)  # runs into 21:00
    assert in_quiet_hours(parse_start("2026-12-01T05:29"), 30)
    assert not in_quiet_hours(parse_start("2026-12-01T05:30"), 600)
    assert not in_quiet_hours(parse_start("2026-12-01T20:50"), 600)


def test_overlaps_found_only_where_occurrences_intersect():
    base = parse_start("2026-12-01T06:00")
    a = [base, base + dt.timedelta(days=1)]
    b = [base + dt.timedelta(minutes=4), base + dt.timedelta(days=1, minutes=10)]
    assert overlaps(a, 300, b, 60) == [base]
    assert overlaps(a, 200, b, 60) == []


@pytest.mark.parametrize("rule", ["FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
                                  "FREQ=YEARLY;BYMONTH=4,6,9,11;BYMONTHDAY=31",
                                  "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=-30"])
def test_impossible_recurrence_refused_before_any_expansion(rule):
    """Regression: an impossible RRULE cost seconds of CPU before it was refused."""
    with pytest.raises(ScheduleError, match="never play"):
        parse_rrule(rule)


def test_leap_day_recurrence_is_possible():
    assert parse_rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29").bymonthday == (29,)
