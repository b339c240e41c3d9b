"""The commune's documents: its profile (letterhead, signer), apology letters for
follow-up cases, and the periodic report of the model as JSON, DOCX and XLSX."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from controller.access.roles import LEADER
from controller.db.connection import ReaderPool
from controller.documents import commune, letters, reports
from controller.web.auth import allow, require_token
from controller.web.deps import RowIdPath, Services, readers, services
from controller.web.models import documents as m

router = APIRouter(prefix="/api/v1", tags=["documents"], dependencies=[Depends(require_token)])

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Since = Query(None, description="first day, e.g. 2026-01-01 (local midnight), or an ISO 8601 "
                                "time")
Until = Query(None, description="the day after the last, e.g. 2026-05-01 (exclusive)")
Kind = Query(None, description="instead of since/until: one of the plan's reports, from 1 "
                               "January to its deadline (1 May, 1 September, 15 November)")
Year = Query(None, ge=2000, le=2200, description="the year of `period` (default: this year)")
PeriodKind = Literal["6-month", "9-month", "year"]


def _file(body: bytes, media_type: str, name: str) -> Response:
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/commune", dependencies=[allow(LEADER)],
            response_model=m.Commune, summary="The commune's letterhead and signer")
def get_commune(pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return commune.get_profile(db)


@router.put("/commune", dependencies=[allow(LEADER)],
            response_model=m.Commune, summary="Change the commune's letterhead or signer")
def put_commune(body: m.CommunePut, svc: Services = Depends(services)) -> Any:
    return commune.put_profile(svc.writer, body.model_dump(exclude_none=True))


@router.get("/cases/{id}/letter", dependencies=[allow(LEADER)],
            response_model=m.Letter,
            summary="A case's apology letter: its fields, defaults drawn from the case")
def get_letter(id: RowIdPath, pool: ReaderPool = Depends(readers)) -> Any:
    with pool.connection() as db:
        return letters.letter(db, id)


@router.put("/cases/{id}/letter", dependencies=[allow(LEADER)],
            response_model=m.Letter,
            summary="Edit a case's apology letter before generating it")
def put_letter(id: RowIdPath, body: m.LetterPut, svc: Services = Depends(services)) -> Any:
    letters.put_letter(svc.writer, id, body.model_dump(exclude_unset=True))
    with svc.readers.connection() as db:
        return letters.letter(db, id)


@router.get("/cases/{id}/letter.docx", dependencies=[allow(LEADER)],
            response_class=Response, responses={200: {"content": {DOCX: {}}}},
            summary="The apology letter as DOCX (Decree 30 layout); counts as sent")
def letter_docx(id: RowIdPath, svc: Services = Depends(services)) -> Response:
    with svc.readers.connection() as db:
        fields, profile = letters.letter(db, id), commune.get_profile(db)
    body = letters.letter_docx(fields, profile, commune.local_today())
    letters.mark_generated(svc.writer, id)
    return _file(body, DOCX, letters.filename(id))


@router.get("/reports/periods", dependencies=[allow(LEADER)],
            response_model=list[m.StandardPeriod],
            summary="The plan's 6-month, 9-month and year-end periods of a year")
def periods(year: int | None = Year) -> Any:
    return reports.standard_periods(year or commune.local_today().year)


def _data(pool: ReaderPool, since: str | None, until: str | None, kind: str | None,
          year: int | None) -> dict[str, Any]:
    start, end = reports.bounds(since, until, kind, year)
    with pool.connection() as db:
        return reports.report_data(db, start, end)


@router.get("/reports/model", dependencies=[allow(LEADER)],
            response_model=m.Report,
            summary="The figures of the model's report for [since, until)")
def report(since: str | None = Since, until: str | None = Until,
           period: PeriodKind | None = Kind, year: int | None = Year,
           pool: ReaderPool = Depends(readers)) -> Any:
    return _data(pool, since, until, period, year)


@router.get("/reports/model.docx", dependencies=[allow(LEADER)],
            response_class=Response, responses={200: {"content": {DOCX: {}}}},
            summary="The model's report as DOCX (Decree 30 layout), to edit and sign")
def report_docx(since: str | None = Since, until: str | None = Until,
                period: PeriodKind | None = Kind, year: int | None = Year,
                pool: ReaderPool = Depends(readers)) -> Response:
    data = _data(pool, since, until, period, year)
    with pool.connection() as db:
        profile = commune.get_profile(db)
    body = reports.report_docx(data, profile, commune.local_today())
    return _file(body, DOCX, reports.filename(data, "docx"))


@router.get("/reports/model.xlsx", dependencies=[allow(LEADER)],
            response_class=Response, responses={200: {"content": {XLSX: {}}}},
            summary="The model's report as XLSX: a sheet per table, native charts")
def report_xlsx(since: str | None = Since, until: str | None = Until,
                period: PeriodKind | None = Kind, year: int | None = Year,
                pool: ReaderPool = Depends(readers)) -> Response:
    data = _data(pool, since, until, period, year)
    return _file(reports.report_xlsx(data), XLSX, reports.filename(data, "xlsx"))
