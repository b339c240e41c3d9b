"""Citizens' ratings: the list, statistics, the district report, alerts, follow-up cases."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from controller.access.roles import LEADER
from controller.db.connection import ReaderPool
from controller.ratings import alerts, cases, stats, store
from controller.web.auth import allow, require_token
from controller.web.deps import RowIdPath, Services, readers, services
from controller.web.models import ratings as m

#: The most ratings one answer holds (each page is built in memory).
MAX_PAGE = 10_000

router = APIRouter(prefix="/api/v1", tags=["ratings"], dependencies=[Depends(require_token)])

Since = Query(None, description="ISO 8601 UTC, e.g. 2026-01-31T00:00:00Z")
Until = Query(None, description="ISO 8601 UTC; exclusive")


# Declared before any /ratings/{...} route could shadow it.
@router.get("/ratings/stats", dependencies=[allow(LEADER)],
            response_model=m.Stats,
            summary="Counts and satisfaction index, by officer, desk, day, hour, level, reason")
def rating_stats(since: str | None = Since, until: str | None = Until, desk: str | None = None,
                 officer: str | None = None, device: str | None = None,
                 include_misuse: bool = False,
                 by: str | None = Query(None, description="comma-separated groupings"),
                 pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return stats.rating_stats(db, by=by.split(",") if by else None, since=since, until=until,
                                  desk=desk, officer=officer, device=device,
                                  include_misuse=include_misuse)


@router.get("/ratings/report.csv", dependencies=[allow(LEADER)],
            response_class=Response,
            responses={200: {"content": {"text/csv": {}}}},
            summary="Per-officer report (CSV) for a period: the 6-, 9- and 12-month reports")
def report(since: str | None = Since, until: str | None = Until, desk: str | None = None,
           include_misuse: bool = False,
           pool: ReaderPool = Depends(readers)) -> Response:
    with pool.connection() as db:
        body = stats.officer_report_csv(db, since=since, until=until, desk=desk,
                                        include_misuse=include_misuse)
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="ratings.csv"'})


@router.get("/ratings", dependencies=[allow(LEADER)],
            response_model=list[m.Rating], summary="Citizens' ratings, newest first")
def list_ratings(since: str | None = Since, until: str | None = Until,
                 device: str | None = None, desk: str | None = None,
                 officer: str | None = None, include_misuse: bool = False,
                 limit: int = Query(1000, ge=1, le=MAX_PAGE,
                                    description="at most 10,000: page on with `until` set "
                                                "to the last rating's ts"),
                 pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return store.list_ratings(db, since=since, until=until, device=device, desk=desk,
                                  officer=officer, include_misuse=include_misuse, limit=limit)


@router.get("/alerts", dependencies=[allow(LEADER)],
            response_model=list[m.Alert],
            summary="Alerts of desks with many negative answers")
def list_alerts(since: str | None = None, desk: str | None = None,
                pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return alerts.list_alerts(db, since, desk)


@router.get("/alerts/rules", dependencies=[allow(LEADER)],
            response_model=m.AlertRules, summary="The alert rule in force")
def get_rules(svc: Services = Depends(services)) -> Any:
    return dataclasses.asdict(svc.alerts.rules)


@router.put("/alerts/rules", dependencies=[allow(LEADER)],
            response_model=m.AlertRules, summary="Change the alert rule")
def put_rules(body: m.AlertRulesPut, svc: Services = Depends(services)) -> Any:
    svc.alerts.set_rules(alerts.parse_rules(body.model_dump(exclude_none=True), svc.alerts.rules))
    return dataclasses.asdict(svc.alerts.rules)


@router.get("/cases", dependencies=[allow(LEADER)],
            response_model=list[m.Case],
            summary="Follow-up cases of dissatisfied ratings")
def list_cases(status: str | None = None, desk: str | None = None,
               pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return cases.list_cases(db, status, desk)


@router.get("/cases/{id}", dependencies=[allow(LEADER)],
            response_model=m.Case, summary="One case")
def get_case(id: RowIdPath, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return cases.get_case(db, id)


@router.put("/cases/{id}", dependencies=[allow(LEADER)],
            response_model=m.Case, summary="Update a case: status, note")
def put_case(id: RowIdPath, body: m.CasePut, svc: Services = Depends(services)) -> Any:
    cases.update_case(svc.writer, id, body.status, body.note)
    with svc.readers.connection() as db:
        return cases.get_case(db, id)
