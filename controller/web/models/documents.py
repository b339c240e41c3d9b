"""Bodies of the documents' routes: the commune's profile, apology letters, reports."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from controller.documents.commune import MAX_RECIPIENTS, MAX_TEXT
from controller.documents.letters import EDITABLE
from controller.web.models import RequestBody, ResponseBody

Text = Field(None, min_length=1, max_length=MAX_TEXT)


class Commune(ResponseBody):
    name: str
    district: str
    province: str
    place: str = Field(description="the place written before a document's date")
    leader_name: str
    leader_position: str
    signing_for: str = Field(description="the signer's authority, e.g. 'TM. Ủy ban nhân dân'")
    letter_symbol: str
    report_symbol: str
    report_recipients: list[str]
    updated: float | None


class CommunePut(RequestBody):
    """The fields to change; those left out keep their value."""

    name: str | None = Field(None, min_length=1, max_length=MAX_TEXT,
                             examples=["Xã Tân An"])
    district: str | None = Text
    province: str | None = Text
    place: str | None = Field(None, min_length=1, max_length=MAX_TEXT, examples=["Tân An"])
    leader_name: str | None = Text
    leader_position: str | None = Text
    signing_for: str | None = Field(None, max_length=MAX_TEXT,
                                    description="'TM. Ủy ban nhân dân', 'KT. Chủ tịch', or "
                                                "empty when the signer signs in their own name")
    letter_symbol: str | None = Field(None, min_length=1, max_length=MAX_TEXT,
                                      examples=["TXL-UBND"])
    report_symbol: str | None = Field(None, min_length=1, max_length=MAX_TEXT,
                                      examples=["BC-UBND"])
    report_recipients: list[str] | None = Field(None, max_length=MAX_RECIPIENTS)


class Letter(ResponseBody):
    case_id: int
    recipient: str
    what_went_wrong: str
    remedy: str
    number: str
    edited: list[str] = Field(description="the fields staff set (the others are defaults)")
    dossier_code: str | None
    service_day: str = Field(description="the local day the citizen was served")
    officer: dict[str, Any] | None
    desk: dict[str, Any] | None
    reasons: list[str]
    generated: int = Field(description="how many times the DOCX was made; the first is the "
                                       "letter sent")
    first_generated: float | None
    last_generated: float | None
    updated: float | None


class LetterPut(RequestBody):
    """The fields to change; null puts one back to its default (drawn from the case)."""

    recipient: str | None = Field(None, max_length=EDITABLE["recipient"],
                                  description="how the citizen is addressed after 'Kính gửi:',"
                                              " e.g. 'Ông Nguyễn Văn B'")
    what_went_wrong: str | None = Field(None, max_length=EDITABLE["what_went_wrong"],
                                        description="ends 'Ông/Bà chưa hài lòng về …'")
    remedy: str | None = Field(None, max_length=EDITABLE["remedy"])
    number: str | None = Field(None, max_length=EDITABLE["number"],
                               description="the number the clerk registers it under")


class Period(ResponseBody):
    since: str
    until: str
    since_utc: str
    until_utc: str
    first_day: str
    last_day: str
    kind: str | None
    label: str


class StandardPeriod(Period):
    deadline: str


class Report(ResponseBody):
    period: Period
    generated: str
    ratings: dict[str, Any] = Field(description="as GET /ratings/stats answers for the period")
    levels: list[dict[str, Any]]
    officers: list[dict[str, Any]]
    desks: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    months: list[dict[str, Any]]
    alerts: dict[str, Any]
    cases: dict[str, Any]
    letters: dict[str, Any]
    broadcasts: dict[str, Any]
    emergencies: dict[str, Any]
    devices: dict[str, Any]
    cameras: dict[str, Any]
