"""Satisfaction statistics: counts and satisfaction index by officer, desk, day, hour,
level and reason, over the same filters as the ratings list.

The satisfaction index is the share of answers on the satisfied levels
(see :mod:`wire.rating`). Ratings flagged as misuse are left out unless
asked for.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlite_utils

from controller.errors import InvalidRequest, _t
from controller.ratings.store import rating_filter

#: Grouping expressions. ``+officer``, not ``officer``: a bare column lets SQLite group by
#: walking that column's whole index (every rating ever), where the period's range of
#: the covering ``ratings_stats`` index and a small sort is many times faster.
GROUPINGS = {
    "officer": "+officer",
    "desk": "+desk",
    "day": "local_day",
    "hour": "local_hour",
    "level": "scale || '/' || level",
}


def _figures(count: int, satisfied: int, dissatisfied: int) -> dict[str, Any]:
    return {"count": count, "satisfied": satisfied, "dissatisfied": dissatisfied,
            "satisfaction_index": round(satisfied / count, 4) if count else None}


def rating_stats(db: sqlite_utils.Database, by: list[str] | None = None,
                 **filters: Any) -> dict[str, Any]:
    """Totals and one breakdown per name in ``by`` (all of them if None; none if empty)."""
    wanted = [*GROUPINGS, "reason"] if by is None else by
    unknown = set(wanted) - {*GROUPINGS, "reason"}
    if unknown:
        raise InvalidRequest(_t("stats by {unknown}: expected some of {known}"),
                             unknown=sorted(unknown), known=[*GROUPINGS, "reason"])
    where, params = rating_filter(**filters)
    total = db.execute(f"SELECT count(*), coalesce(sum(satisfied), 0),"
                       f" coalesce(sum(dissatisfied), 0) FROM ratings{where}", params).fetchone()
    out: dict[str, Any] = {**_figures(*total), "by": {}}
    for name in wanted:
        if name == "reason":
            sql = (f"SELECT j.value, count(*), sum(satisfied), sum(dissatisfied) FROM ratings,"
                   f" json_each(ratings.reasons) j{where} GROUP BY j.value ORDER BY count(*) DESC")
        else:
            sql = (f"SELECT {GROUPINGS[name]} AS k, count(*), sum(satisfied), sum(dissatisfied)"
                   f" FROM ratings{where} GROUP BY k ORDER BY k")
        out["by"][name] = [{"key": k, **_figures(n, s, d)}
                           for k, n, s, d in db.execute(sql, params).fetchall()]
    return out


def officer_report_csv(db: sqlite_utils.Database, **filters: Any) -> bytes:
    """The district report: one row per officer with counts per level and the index.

    UTF-8 with a byte-order mark, so spreadsheet programs show Vietnamese names right.
    """
    where, params = rating_filter(**filters)
    rows = db.execute(
        "SELECT r.officer, coalesce(o.name, ''), coalesce(o.title, ''), r.scale, r.level,"
        f" count(*), sum(r.satisfied) FROM (SELECT * FROM ratings{where}) r"
        " LEFT JOIN officers o ON o.id = r.officer GROUP BY r.officer, r.scale, r.level"
        " ORDER BY r.officer", params).fetchall()
    table: dict[Any, dict[str, Any]] = {}
    for officer, name, title, scale, level, count, satisfied in rows:
        entry = table.setdefault(officer, {"name": name, "title": title, "levels": {},
                                           "count": 0, "satisfied": 0})
        entry["levels"][f"{level}/{scale}"] = count
        entry["count"] += count
        entry["satisfied"] += satisfied
    columns = sorted({k for e in table.values() for k in e["levels"]},
                     key=lambda k: (int(k.split("/")[1]), int(k.split("/")[0])))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["officer", "name", "title", "answers", *(f"level {c}" for c in columns),
                     "satisfaction_index"])
    for officer, e in table.items():
        writer.writerow([officer or "", e["name"], e["title"], e["count"],
                         *(e["levels"].get(c, 0) for c in columns),
                         f"{e['satisfied'] / e['count']:.4f}"])
    return ("\ufeff" + out.getvalue()).encode()
