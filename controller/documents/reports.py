"""The periodic report of the "Chính quyền thân thiện, vì nhân dân phục vụ" model: its
figures for any period [since, until), and the plan's standard periods.

Every figure comes from the query the API answers the same question with
(``rating_stats`` with the same filters for ratings, ``list_alerts`` for
alerts, ``list_devices`` for devices) or, where the API lists rows (cases,
the playback log, broadcasts), from one SQL aggregate over the same rows with
the same period clause; ``tests/test_documents.py`` checks each against the
API. Nothing loops over ratings or receipts in Python: a year of data
(200,000 ratings) is reported in well under the 5 s allowed.

Periods are local (the commune's time zone): a date means local midnight.
The plan asks for the 6-month, 9-month and year-end reports before 1 May,
1 September and 15 November; each standard period runs from 1 January to that
date, so a report made on the deadline's eve holds everything up to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from controller.broadcasts.schedule import TIMEZONE, parse_start
from controller.cameras import holds as camera_holds
from controller.documents.reasons import reason_labels
from controller.documents.report_files import report_docx, report_xlsx
from controller.errors import InvalidRequest, _t
from controller.fleet.presence import availability
from controller.fleet.registry import list_devices
from controller.ratings.alerts import KINDS, list_alerts
from controller.ratings.cases import STATUSES
from controller.ratings.roster import list_desks, list_officers
from controller.ratings.stats import rating_stats
from wire.messages import format_ts, utc_now
from wire.rating import level_of
from wire.speaker import RECEIPT_STATUSES

__all__ = ["STANDARD", "Period", "bounds", "filename", "period_of", "report_data",
           "report_docx", "report_xlsx", "standard_period", "standard_periods"]

#: The plan's reports: kind -> (deadline month, day, how the title names the period).
STANDARD = {
    "6-month": (5, 1, "06 tháng năm {year}"),
    "9-month": (9, 1, "09 tháng năm {year}"),
    "year": (11, 15, "năm {year}"),
}
#: The rating breakdowns the report shows (as ``GET /ratings/stats?by=`` names them).
RATING_GROUPS = ["level", "officer", "desk", "reason", "day"]
ALERT_KINDS = KINDS
#: The longest period one report covers: bounds the work a request can ask for.
MAX_DAYS = 3 * 366


@dataclasses.dataclass(frozen=True)
class Period:
    """[since, until) as local times and as the UTC wire times the queries compare."""

    since: dt.datetime
    until: dt.datetime
    kind: str | None = None

    @property
    def since_utc(self) -> str:
        return format_ts(self.since)

    @property
    def until_utc(self) -> str:
        return format_ts(self.until)

    @property
    def first_day(self) -> dt.date:
        return self.since.date()

    @property
    def last_day(self) -> dt.date:
        """The last local day the period touches (``until`` is exclusive)."""
        return (self.until - dt.timedelta(microseconds=1)).date()

    def label(self) -> str:
        """How the title names it: "06 tháng năm 2026", or the dates it runs between."""
        if self.kind:
            return STANDARD[self.kind][2].format(year=self.since.year)
        return (f"từ ngày {self.first_day:%d/%m/%Y} đến ngày {self.last_day:%d/%m/%Y}")

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "since_utc": self.since_utc, "until_utc": self.until_utc,
                "first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "kind": self.kind, "label": self.label()}


def standard_period(kind: str, year: int, tz: str = TIMEZONE) -> Period:
    """One of the plan's periods: 1 January of ``year`` to the report's deadline."""
    if kind not in STANDARD:
        raise InvalidRequest(_t("period {kind!r}: expected one of {kinds}"), kind=kind,
                             kinds=list(STANDARD))
    if not 2000 <= year <= 2200:
        raise InvalidRequest(_t("year {year!r}: expected 2000..2200"), year=year)
    zone = ZoneInfo(tz)
    month, day, _ = STANDARD[kind]
    return Period(dt.datetime(year, 1, 1, tzinfo=zone), dt.datetime(year, month, day,
                                                                      tzinfo=zone), kind)


def standard_periods(year: int, tz: str = TIMEZONE) -> list[dict[str, Any]]:
    """The plan's three periods of ``year``, each with its deadline (the end)."""
    return [{**standard_period(kind, year, tz).as_dict(),
             "deadline": dt.date(year, *STANDARD[kind][:2]).isoformat()} for kind in STANDARD]


def bounds(since: str | None, until: str | None, kind: str | None, year: int | None,
           tz: str = TIMEZONE) -> tuple[str, str]:
    """The [since, until) a request asks for: both given, or a standard ``kind`` of
    ``year`` (the current year by default)."""
    if kind:
        if since or until:
            raise InvalidRequest(_t("give since and until, or period, not both"))
        period = standard_period(kind, year or dt.datetime.now(ZoneInfo(tz)).year, tz)
        return period.since.isoformat(), period.until.isoformat()
    if not (since and until):
        raise InvalidRequest(_t("give since and until (e.g. 2026-01-01 and 2026-05-01, local "
                                "dates; until is exclusive), or period ({kinds})"),
                             kinds=", ".join(STANDARD))
    return since, until


def filename(data: dict[str, Any], extension: str) -> str:
    """bao-cao-mo-hinh-2026-01-01-2026-04-30.docx"""
    period = data["period"]
    return f"bao-cao-mo-hinh-{period['first_day']}-{period['last_day']}.{extension}"


def period_of(since: str, until: str, tz: str = TIMEZONE) -> Period:
    """[since, until) from a local date ("2026-01-01": local midnight) or an ISO 8601
    time (local without an offset); named as a standard period when it is one."""
    start, end = _instant(since, "since", tz), _instant(until, "until", tz)
    if end <= start:
        raise InvalidRequest(_t("until {until!r} is not after since {since!r}"), until=until,
                             since=since)
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise InvalidRequest(_t("period {since!r} to {until!r}: at most {most} days"),
                             since=since, until=until, most=MAX_DAYS)
    for kind in STANDARD:
        known = standard_period(kind, start.year, tz)
        if (known.since, known.until) == (start, end):
            return known
    return Period(start, end)


_BAD_INSTANT = {
    "since": _t("since {value!r}: expected a date (2026-01-01, local midnight) or an ISO 8601"
                " time, years 2000 to 2200"),
    "until": _t("until {value!r}: expected a date (2026-01-01, local midnight) or an ISO 8601"
                " time, years 2000 to 2200")}


def _instant(text: str, name: str, tz: str) -> dt.datetime:
    """``text`` as a time in the commune's zone (its local days are the report's days)."""
    zone = ZoneInfo(tz)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        local = when.astimezone(zone) if when.tzinfo else when.replace(tzinfo=zone)
        if not 2000 <= local.year <= 2200:
            raise ValueError(text)
    except (AttributeError, ValueError, OverflowError):
        raise InvalidRequest(_BAD_INSTANT[name], value=text) from None
    return local


def report_data(db: sqlite_utils.Database, since: str, until: str, *, tz: str = TIMEZONE,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Every figure of the report for [since, until) (see :func:`period_of`)."""
    period = period_of(since, until, tz)
    stats = rating_stats(db, by=RATING_GROUPS, since=period.since_utc, until=period.until_utc)
    return {
        "period": period.as_dict(),
        "generated": format_ts(now or utc_now()),
        "ratings": stats,
        "levels": _levels(stats),
        "officers": _officers(db, stats),
        "desks": _desks(db, stats),
        "reasons": _reasons(db, stats),
        "months": _months(stats),
        "alerts": _alerts(db, period),
        "cases": _cases(db, period),
        "letters": _letters(db, period),
        "broadcasts": _broadcasts(db, period),
        "emergencies": _emergencies(db, period, tz),
        "devices": _devices(db, period),
        "cameras": _cameras(db, period),
    }


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("count", "satisfied", "dissatisfied", "satisfaction_index")}


def _levels(stats: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in stats["by"]["level"]:
        scale, level = (int(n) for n in row["key"].split("/"))
        rows.append({"scale": scale, "level": level, "label": level_of(scale, level).vi,
                     "count": row["count"],
                     "share": round(row["count"] / stats["count"], 4) if stats["count"] else None})
    return sorted(rows, key=lambda r: (r["scale"], r["level"]))


def _officers(db: sqlite_utils.Database, stats: dict[str, Any]) -> list[dict[str, Any]]:
    known = {o["id"]: o for o in list_officers(db)}
    return [{"id": row["key"], "name": known.get(row["key"], {}).get("name") or row["key"],
             "title": known.get(row["key"], {}).get("title") or "", **_figures(row)}
            for row in stats["by"]["officer"]]


def _desks(db: sqlite_utils.Database, stats: dict[str, Any]) -> list[dict[str, Any]]:
    known = {d["id"]: d["name"] for d in list_desks(db)}
    return [{"id": row["key"], "name": known.get(row["key"]) or row["key"], **_figures(row)}
            for row in stats["by"]["desk"]]


def _reasons(db: sqlite_utils.Database, stats: dict[str, Any]) -> list[dict[str, Any]]:
    labels = reason_labels(db)
    return [{"key": row["key"], "label": labels.get(row["key"], row["key"]),
             "count": row["count"], "dissatisfied": row["dissatisfied"]}
            for row in stats["by"]["reason"]]


def _months(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The by-day breakdown summed per month (at most a few hundred rows)."""
    months: dict[str, dict[str, int]] = {}
    for row in stats["by"]["day"]:
        month = months.setdefault(str(row["key"])[:7], {"count": 0, "satisfied": 0,
                                                        "dissatisfied": 0})
        for key in month:
            month[key] += row[key]
    return [{"month": key, **m,
             "satisfaction_index": round(m["satisfied"] / m["count"], 4) if m["count"] else None}
            for key, m in sorted(months.items())]


def _alerts(db: sqlite_utils.Database, period: Period) -> dict[str, Any]:
    """As ``GET /alerts?since=`` lists them, up to ``until`` (alerts are few: at most one
    per desk and window)."""
    rows = [a for a in list_alerts(db, since=period.since_utc) if a["ts"] < period.until_utc]
    by_kind = {kind: sum(1 for a in rows if a["kind"] == kind) for kind in ALERT_KINDS}
    return {"total": len(rows), "by_kind": by_kind}


def _cases(db: sqlite_utils.Database, period: Period) -> dict[str, Any]:
    """Cases of the period's ratings by status: ``GET /cases`` counted by its rating's
    time."""
    counts = dict(db.execute(
        "SELECT c.status, count(*) FROM cases c JOIN ratings r ON r.event_id = c.rating_id"
        " WHERE r.ts >= ? AND r.ts < ? GROUP BY c.status",
        (period.since_utc, period.until_utc)).fetchall())
    by_status = {status: counts.get(status, 0) for status in STATUSES}
    return {"total": sum(by_status.values()), "by_status": by_status}


def _letters(db: sqlite_utils.Database, period: Period) -> dict[str, Any]:
    """Apology letters sent in the period: first generated within it."""
    (sent,) = db.execute("SELECT count(*) FROM letters WHERE first_generated >= ?"
                         " AND first_generated < ?",
                         (period.since.timestamp(), period.until.timestamp())).fetchone()
    return {"sent": sent}


def _broadcasts(db: sqlite_utils.Database, period: Period) -> dict[str, Any]:
    """Receipts per hamlet and status: ``GET /playback-log`` for the period, counted."""
    rows = db.execute(
        "SELECT coalesce(d.hamlet, ''), r.status, count(*) FROM playback_receipts r"
        " LEFT JOIN devices d ON d.id = r.device WHERE r.scheduled >= ? AND r.scheduled < ?"
        " GROUP BY 1, 2 ORDER BY 1", (period.since_utc, period.until_utc)).fetchall()
    hamlets: dict[str, dict[str, int]] = {}
    for hamlet, status, count in rows:
        hamlets.setdefault(hamlet, dict.fromkeys(RECEIPT_STATUSES, 0))[status] = count
    listed = [{"hamlet": h or None, **counts, "receipts": sum(counts.values())}
              for h, counts in hamlets.items()]
    totals = {s: sum(c[s] for c in hamlets.values()) for s in RECEIPT_STATUSES}
    totals["receipts"] = sum(totals.values())
    return {"hamlets": listed, "total": totals}


def _emergencies(db: sqlite_utils.Database, period: Period, tz: str) -> dict[str, Any]:
    """Emergency items created in the period, cancelled ones included (as
    ``GET /broadcasts?include_cancelled=true`` lists them)."""
    rows = db.execute(
        "SELECT id, title, start, status, created, cancelled FROM broadcasts"
        " WHERE level = 'emergency' AND created >= ? AND created < ? ORDER BY created",
        (period.since.timestamp(), period.until.timestamp())).fetchall()
    items = [dict(zip(("id", "title", "start", "status", "created", "cancelled"), r,
                      strict=True)) for r in rows]
    for item in items:  # as the commune reads the time: "06:30 05/03/2026"
        item["start_local"] = parse_start(item["start"], tz).astimezone(ZoneInfo(tz)).strftime(
            "%H:%M %d/%m/%Y")
    return {"count": len(items), "items": items}


def _cameras(db: sqlite_utils.Database, period: Period) -> dict[str, Any]:
    """Footage held in the period: holds made (after a dissatisfied rating, by hand) as
    ``GET /camera/holds?since=&until=`` lists them, clips verified in it as
    ``GET /camera/clips`` gives their ``verified`` times. Not applicable ("—") while no
    camera is approved and none ever held footage."""
    figures = camera_holds.summary(db, period.since.timestamp(), period.until.timestamp())
    (cameras,) = db.execute("SELECT count(*) FROM devices WHERE role = 'camera'"
                            " AND status = 'approved'").fetchone()
    (ever,) = db.execute("SELECT count(*) FROM camera_holds").fetchone()
    return {"applicable": bool(cameras or ever), "cameras": cameras, **figures}


def _devices(db: sqlite_utils.Database, period: Period) -> dict[str, Any]:
    """Approved devices per role, how many are online now (``GET /devices``) and how
    much of the period they were online (``GET /devices/availability``)."""
    kept = availability(db, period.since.timestamp(), period.until.timestamp())
    roles: dict[str, dict[str, Any]] = {
        r["role"]: {"devices": 0, "online": 0, "availability": r["availability"]}
        for r in kept["roles"]}
    for device in list_devices(db, status="approved"):
        role = roles.setdefault(device["role"] or "", {"devices": 0, "online": 0,
                                                        "availability": None})
        role["devices"] += 1
        role["online"] += int(device["online"])
    listed = [{"role": role, **counts} for role, counts in sorted(roles.items())]
    observed = sum(r["observed_s"] for r in kept["roles"])
    online_s = sum(r["online_s"] for r in kept["roles"])
    return {"roles": listed, "devices": sum(r["devices"] for r in listed),
            "online": sum(r["online"] for r in listed),
            "availability": round(online_s / observed, 4) if observed else None,
            "tracked_from": kept["tracked_from"]}
