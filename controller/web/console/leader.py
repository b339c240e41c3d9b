"""The leaders' pages: satisfaction with charts and drill-down to the ratings, alerts,
follow-up cases with their apology letter, the model's periodic reports, and the
commune's public information.

Handlers gather what the domain gives, through the same functions the API
answers with (``stats.rating_stats``, ``store.rating_filter``, ``cases``,
``letters``, ``reports.report_data``), so a page shows the API's figures. Forms
call the JSON API directly with htmx (``hx-put`` + ``json-enc``, the session's
CSRF token from ``<body hx-headers>``); ``console/technician.js`` shows each
answer. The public information form posts to a page route, which turns its
repeated fields into the API's body and calls the same service.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import sqlite_utils
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from controller.access.roles import LEADER, Caller
from controller.db.connection import ReaderPool
from controller.documents import commune, letters, reports
from controller.documents.reasons import reason_labels
from controller.documents.report_tables import COUNT, SHARE, report_tables
from controller.errors import ControllerError, InvalidRequest, _t, message_of, text
from controller.ratings import alerts, cases, public_info, roster, stats, store
from controller.web.auth import allow, require_token
from controller.web.console import i18n, svg
from controller.web.console.render import N_, PAGE, MenuItem, add_to_menu, render
from controller.web.deps import Services, readers, services
from controller.web.errors import answer, page_text
from wire.messages import MessageError, format_ts, utc_now
from wire.rating import level_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])

add_to_menu(
    MenuItem("/ratings", N_("Satisfaction"), (LEADER,), order=30),
    MenuItem("/alerts", N_("Alerts"), (LEADER,), order=31),
    MenuItem("/cases", N_("Cases"), (LEADER,), order=32),
    MenuItem("/reports", N_("Reports"), (LEADER,), order=33),
    MenuItem("/public-info", N_("Public information"), (LEADER,), order=34),
)

#: The period presets of the satisfaction page: this month, then the plan's periods.
PRESETS = {"month": N_("This month"), "6-month": N_("6 months"), "9-month": N_("9 months"),
           "year": N_("Year")}
#: The breakdowns of the satisfaction page, in the order shown, with their headings.
GROUPS = {"officer": N_("By officer"), "desk": N_("By desk"), "day": N_("By day"),
          "hour": N_("By hour"), "level": N_("By level"), "reason": N_("By reason")}
#: Ratings listed per section of a drill-down (the newest), alerts and cases per list.
MAX_LIST = 200
#: Words shown from data on these pages, translated in the templates.
VOCABULARY = (N_("open"), N_("contacted"), N_("closed"), N_("negative"), N_("pace"))


# -- periods ----------------------------------------------------------------------------

def choose_period(period: str | None, first: str | None, last: str | None,
                  year: int | None = None, today: dt.date | None = None
                  ) -> tuple[reports.Period, str | None]:
    """The period a page asks for: ``first``..``last`` (local days, both included), one of
    the plan's periods of ``year``, or this month; and the preset it is, if one."""
    today = today or commune.local_today()
    if first and last:
        try:
            end = dt.date.fromisoformat(last) + dt.timedelta(days=1)
        except ValueError:
            raise InvalidRequest(_t("last day {last!r}: expected a date, e.g. 2026-04-30"),
                                 last=last) from None
        return reports.period_of(first, end.isoformat()), None
    if period in reports.STANDARD:
        return reports.standard_period(period, year or today.year), period
    start = today.replace(day=1)
    after = (start + dt.timedelta(days=32)).replace(day=1)
    return reports.period_of(start.isoformat(), after.isoformat()), "month"


def _period_or_default(period: str | None, first: str | None, last: str | None,
                       year: int | None) -> tuple[reports.Period, str | None, str | None]:
    try:
        chosen, preset = choose_period(period, first, last, year)
        return chosen, preset, None
    except InvalidRequest as exc:
        chosen, preset = choose_period(None, None, None)
        return chosen, preset, message_of(exc)


def _period_query(p: reports.Period) -> dict[str, str]:
    return {"first": p.first_day.isoformat(), "last": p.last_day.isoformat()}


def _lang(request: Request) -> str:
    return i18n.choose(request.cookies.get(i18n.COOKIE))


# -- satisfaction -------------------------------------------------------------------------

@router.get("/ratings", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def ratings_page(request: Request, period: str | None = None, first: str | None = None,
                 last: str | None = None, year: int | None = Query(None, ge=2000, le=2200),
                 caller: Caller = Depends(require_token),
                 pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    chosen, preset, error = _period_or_default(period, first, last, year)
    with pool.connection() as db:
        context = satisfaction_data(db, chosen, _lang(request))
    return render(request, "leader_ratings.html", caller=caller, period=chosen,
                  preset=preset, presets=PRESETS, error=error and page_text(request, error),
                  groups=GROUPS, **context)


def satisfaction_data(db: sqlite_utils.Database, period: reports.Period,
                      lang: str) -> dict[str, Any]:
    """The page's figures: ``rating_stats`` for the period (as ``GET /ratings/stats``
    answers with the same since/until), labelled, with a chart per breakdown."""
    figures = _cached("stats", db, period.since_utc, period.until_utc, lambda: stats.rating_stats(
        db, by=None, since=period.since_utc, until=period.until_utc))
    with_misuse = stats.rating_stats(db, by=[], since=period.since_utc,
                                     until=period.until_utc, include_misuse=True)
    names = _names(db, lang)
    query = _period_query(period)
    groups: dict[str, dict[str, Any]] = {}
    for name, rows in figures["by"].items():
        labelled = [{**row, "label": _label(name, row["key"], names),
                     "href": "/ratings/list?" + urlencode(
                         {**query, "by": name, "key": "" if row["key"] is None else row["key"]})}
                    for row in rows]
        if name in ("day", "hour"):
            chart = svg.columns([(str(r["label"]), r["count"], r["satisfaction_index"])
                                 for r in labelled])
        elif name in ("officer", "desk"):
            chart = svg.bars([(r["label"], r["satisfaction_index"],
                               _percent(r["satisfaction_index"])) for r in labelled], scale=1.0)
        else:
            chart = svg.bars([(r["label"], r["count"], str(r["count"])) for r in labelled])
        groups[name] = {"rows": labelled, "chart": chart}
    return {"figures": figures, "misuse": with_misuse["count"] - figures["count"],
            "breakdowns": groups, "period_query": urlencode(query)}


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _names(db: sqlite_utils.Database, lang: str) -> dict[str, Any]:
    """What keys are shown as: officers' and desks' names, reasons' labels (Vietnamese;
    the keys in English), and the language of the levels' words."""
    return {"officer": {o["id"]: o["name"] for o in roster.list_officers(db)},
            "desk": {d["id"]: d["name"] for d in roster.list_desks(db)},
            "reason": reason_labels(db) if lang == "vi" else {}, "lang": lang}


def _label(group: str, key: Any, names: dict[str, Any]) -> str:
    """How a breakdown's key is shown: a name, a level's words, a day as dd/mm."""
    if key is None:
        return "—"
    if group in ("officer", "desk", "reason"):
        return names[group].get(key, str(key))
    if group == "day":
        return f"{key[8:10]}/{key[5:7]}"
    if group == "hour":
        return f"{int(key):02d}h"
    if group == "level":
        scale, level = (int(n) for n in str(key).split("/"))
        try:
            meaning = level_of(scale, level)
        except MessageError:
            return str(key)
        return f"{level}/{scale} · {meaning.vi if names['lang'] == 'vi' else meaning.en}"
    return str(key)


#: How each breakdown narrows the ratings to one of its rows (``None``: IS NULL).
_KEY_CLAUSES = {
    "officer": "officer = ?", "desk": "desk = ?", "day": "local_day = ?",
    "hour": "local_hour = ?", "level": "scale || '/' || level = ?",
    "reason": "EXISTS (SELECT 1 FROM json_each(ratings.reasons) j WHERE j.value = ?)",
}


def drill_down(db: sqlite_utils.Database, period: reports.Period, by: str | None,
               key: str | None, *, misuse: bool, limit: int = MAX_LIST
               ) -> tuple[int, list[dict[str, Any]]]:
    """How many ratings of ``period`` fall in one breakdown's row, and the newest
    ``limit`` of them; misuse (``misuse``) or the ratings the statistics count."""
    where, params = store.rating_filter(since=period.since_utc, until=period.until_utc,
                                        include_misuse=True)
    clauses = [where[len(" WHERE "):]] if where else []
    clauses.append("misuse = 1" if misuse else "misuse = 0")
    if by in _KEY_CLAUSES:
        if key in (None, "") and by in ("officer", "desk"):
            clauses.append(f"{by} IS NULL")
        else:
            clauses.append(_KEY_CLAUSES[by])
            params.append(int(key) if by == "hour" and key and key.isdigit() else key)
    sql_where = " WHERE " + " AND ".join(clauses)
    (count,) = db.execute(f"SELECT count(*) FROM ratings{sql_where}", params).fetchone()
    rows = db.execute(f"SELECT {store._COLUMNS} FROM ratings{sql_where}"  # noqa: SLF001
                      " ORDER BY ts DESC LIMIT ?", (*params, limit)).fetchall()
    return int(count), [store.rating_row(r) for r in rows]


@router.get("/ratings/list", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def ratings_list(request: Request, first: str | None = None, last: str | None = None,
                 period: str | None = None, year: int | None = Query(None, ge=2000, le=2200),
                 by: str | None = None, key: str | None = None,
                 caller: Caller = Depends(require_token),
                 pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    chosen, _, error = _period_or_default(period, first, last, year)
    if by is not None and by not in GROUPS:
        by, key, error = None, None, text(_t("by {by!r}: expected one of {groups}"), by=by,
                                          groups=list(GROUPS))
    lang = _lang(request)
    with pool.connection() as db:
        names = _names(db, lang)
        count, rows = drill_down(db, chosen, by, key, misuse=False)
        misuse_count, misuse_rows = drill_down(db, chosen, by, key, misuse=True)
    for row in (*rows, *misuse_rows):
        row["officer_name"] = _label("officer", row["officer"], names)
        row["desk_name"] = _label("desk", row["desk"], names)
        row["level_label"] = _label("level", f"{row['scale']}/{row['level']}", names)
        row["reason_labels"] = [_label("reason", r, names) for r in row["reasons"]]
    shown = None
    if by:
        shown = _label(by, None if key in (None, "") and by in ("officer", "desk") else key,
                       names)
    return render(request, "leader_ratings_list.html", caller=caller, period=chosen,
                  by=by, key=key, shown=shown, groups=GROUPS,
                  error=error and page_text(request, error), count=count,
                  rows=rows, misuse_count=misuse_count, misuse_rows=misuse_rows,
                  limit=MAX_LIST, period_query=urlencode(_period_query(chosen)))


# -- alerts -------------------------------------------------------------------------------

@router.get("/alerts", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def alerts_page(request: Request, days: int = Query(90, ge=1, le=3 * 366),
                caller: Caller = Depends(require_token),
                pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    since = format_ts(utc_now() - dt.timedelta(days=days))
    with pool.connection() as db:
        found = alerts.list_alerts(db, since=since)
        desks = {d["id"]: d["name"] for d in roster.list_desks(db)}
    kinds = {kind: [a for a in found if a["kind"] == kind] for kind in reports.ALERT_KINDS}
    return render(request, "leader_alerts.html", caller=caller, days=days,
                  counts={k: len(v) for k, v in kinds.items()},
                  kinds={k: v[:MAX_LIST] for k, v in kinds.items()}, desks=desks,
                  limit=MAX_LIST)


# -- cases --------------------------------------------------------------------------------

@router.get("/cases", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def cases_page(request: Request, status: str = "open",
               caller: Caller = Depends(require_token),
               pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    if status not in cases.STATUSES:
        status = "open"
    with pool.connection() as db:
        counts = dict.fromkeys(cases.STATUSES, 0) | dict(
            db.execute("SELECT status, count(*) FROM cases GROUP BY status").fetchall())
        newest = cases.list_cases(db, status, newest=MAX_LIST)
        names = _names(db, _lang(request))
    for case in newest:
        r = case["rating"]
        case["officer_name"] = _label("officer", r["officer"], names)
        case["desk_name"] = _label("desk", r["desk"], names)
        case["level_label"] = _label("level", f"{r['scale']}/{r['level']}", names)
    return render(request, "leader_cases.html", caller=caller, shown_status=status,
                  statuses=cases.STATUSES, counts=counts, cases=newest, total=counts[status],
                  limit=MAX_LIST)


@router.get("/cases/{id}", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def case_page(request: Request, id: int, caller: Caller = Depends(require_token),
              pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        case = cases.get_case(db, id)
        letter = letters.letter(db, id)
        names = _names(db, _lang(request))
    r = case["rating"]
    case["officer_name"] = _label("officer", r["officer"], names)
    case["desk_name"] = _label("desk", r["desk"], names)
    case["level_label"] = _label("level", f"{r['scale']}/{r['level']}", names)
    case["reason_labels"] = [_label("reason", k, names) for k in r["reasons"]]
    return render(request, "leader_case.html", caller=caller, case=case, letter=letter,
                  statuses=cases.STATUSES, limits=letters.EDITABLE)


# -- reports ------------------------------------------------------------------------------

@router.get("/reports", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def reports_page(request: Request, period: str | None = None, first: str | None = None,
                 last: str | None = None, year: int | None = Query(None, ge=2000, le=2200),
                 caller: Caller = Depends(require_token),
                 pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    today = commune.local_today()
    year = year or today.year
    error = None
    try:
        if first and last:
            chosen, preset = choose_period(None, first, last, year)
        else:
            chosen, preset = choose_period(period or "6-month", None, None, year)
    except InvalidRequest as exc:
        (chosen, preset) = choose_period("6-month", None, None, year)
        error = page_text(request, message_of(exc))
    with pool.connection() as db:
        data = _report_data(db, chosen.since.isoformat(), chosen.until.isoformat())
        profile = commune.get_profile(db)
    if preset in reports.STANDARD:
        query = urlencode({"period": preset, "year": chosen.since.year})
    else:
        query = urlencode({"since": chosen.first_day.isoformat(),
                           "until": (chosen.last_day + dt.timedelta(days=1)).isoformat()})
    return render(request, "leader_reports.html", caller=caller, period=chosen,
                  preset=preset, year=year, error=error, data=data,
                  tables=list(report_tables(data).values()), COUNT=COUNT, SHARE=SHARE,
                  standard=reports.standard_periods(year), presets=PRESETS, query=query,
                  profile=profile,
                  profile_fields=PROFILE_FIELDS, years=range(today.year - 3, today.year + 1))


#: Report figures already computed: (since, until, what they were computed from) ->
#: (when, figures). A year's figures take most of a second; they are computed again once
#: a rating, alert, case, letter, receipt or broadcast is added or changed, or after
#: REPORT_TTL_S (devices' online state, which changes without any of those).
_REPORTS: collections.OrderedDict[tuple[Any, ...], tuple[float, dict[str, Any]]] = (
    collections.OrderedDict())
_REPORTS_LOCK = threading.Lock()
REPORT_TTL_S = 60.0
_VERSION = ("SELECT (SELECT max(rowid) FROM ratings), (SELECT max(id) FROM alerts),"
            " (SELECT max(updated) FROM cases), (SELECT max(updated) || '/' ||"
            " sum(generated) FROM letters), (SELECT max(rowid) FROM playback_receipts),"
            " (SELECT max(id) || '/' || coalesce(max(cancelled), 0) FROM broadcasts)")


def _report_data(db: sqlite_utils.Database, since: str, until: str) -> dict[str, Any]:
    """``reports.report_data``, kept while nothing it is computed from changed."""
    return _cached("report", db, since, until, lambda: reports.report_data(db, since, until))


def _cached(kind: str, db: sqlite_utils.Database, since: str, until: str,
            compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``'s figures for a period, kept (read only) while nothing they are
    computed from changed and for at most REPORT_TTL_S."""
    key = (kind, since, until, *db.execute(_VERSION).fetchone())
    now = time.monotonic()
    with _REPORTS_LOCK:
        hit = _REPORTS.get(key)
        if hit is not None and now - hit[0] < REPORT_TTL_S:
            return hit[1]
    data = compute()
    with _REPORTS_LOCK:
        _REPORTS[key] = (now, data)
        while len(_REPORTS) > 8:
            _REPORTS.popitem(last=False)
    return data


#: The commune profile's text fields on the reports page, with their labels.
PROFILE_FIELDS = {
    "name": N_("Commune"), "district": N_("District"), "province": N_("Province"),
    "place": N_("Place written before the date"), "leader_name": N_("Signer's name"),
    "leader_position": N_("Signer's position"), "signing_for": N_("Signing on behalf of"),
    "letter_symbol": N_("Letter symbol"), "report_symbol": N_("Report symbol"),
}


# -- public information ---------------------------------------------------------------------

@router.get("/public-info", dependencies=[allow(LEADER)], openapi_extra=PAGE,
            response_class=HTMLResponse)
def public_info_page(request: Request, caller: Caller = Depends(require_token),
                     pool: ReaderPool = Depends(readers)) -> HTMLResponse:
    with pool.connection() as db:
        info = public_info.get_public_info(db)
    return render(request, "leader_public_info.html", caller=caller, info=info,
                  blank_rows=range(3), max_contacts=public_info.MAX_CONTACTS,
                  max_notices=public_info.MAX_NOTICES)


@router.post("/public-info", dependencies=[allow(LEADER)], openapi_extra=PAGE)
async def save_public_info(request: Request, svc: Services = Depends(services)) -> Response:
    """The form (sent as JSON by htmx's json-enc: a field repeated per contact row, the
    notices one a line) as the body of ``PUT /api/v1/public-info``, checked and pushed
    to every kiosk by the same service."""
    try:
        form = await request.json()
    except ValueError:
        form = None
    if not isinstance(form, dict):
        return answer(request, 400, text(_t("expected the public information form as JSON")))
    names, titles, phones = (_as_list(form.get(f"contact_{k}"))
                             for k in ("name", "title", "phone"))
    contacts = [{"name": n.strip(), "title": t.strip(), "phone": p.strip()}
                for n, t, p in zip(names, titles, phones, strict=False)
                if n.strip() or p.strip()]
    notices = [line.strip() for line in str(form.get("notices") or "").splitlines()
               if line.strip()]
    body = {"contacts": contacts, "hotline": str(form.get("hotline") or "").strip(),
            "notices": notices}
    try:
        await run_in_threadpool(svc.public_info.put, body)
    except ControllerError as exc:
        return answer(request, 400, message_of(exc))
    return Response(status_code=204)


def _as_list(value: Any) -> list[str]:
    """json-enc sends a field given once as text and a repeated one as a list."""
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
