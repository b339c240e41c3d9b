"""Bodies of the ratings' routes: ratings, statistics, alerts, cases, officers, desks, roster."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from controller.ratings.cases import STATUSES
from controller.web.models import RequestBody, ResponseBody


class Rating(ResponseBody):
    id: str
    device: str
    ts: str
    level: int
    scale: int
    misuse: bool
    data: dict[str, Any]
    desk: str | None
    officer: str | None
    local_day: str | None
    local_hour: int | None
    satisfied: bool
    dissatisfied: bool
    reasons: list[str]
    dossier_code: str | None
    time_source: Literal["device", "controller"] = Field(
        "device", description="where its officer, day and hour come from: the kiosk's clock, "
                              "or (its clock not trusted) when the controller received it")


class Figures(ResponseBody):
    count: int
    satisfied: int
    dissatisfied: int
    satisfaction_index: float | None


class Stats(Figures):
    by: dict[str, list[dict[str, Any]]]


class Alert(ResponseBody):
    id: int
    kind: Literal["negative", "pace", "camera_key", "footage_chain"] = Field(
        description="negative: many dissatisfied answers at the desk; pace: the kiosk was "
                    "rated faster than a desk serves (ballot stuffing), those ratings flagged; "
                    "camera_key: a desk camera reported another signing key than the pinned "
                    "one; footage_chain: a camera's chain heads went missing or were "
                    "rewritten")
    desk: str = Field(description="the desk (a kiosk at no desk: the kiosk); camera alerts: "
                                  "the camera")
    ts: str
    window_start: str
    answers: int
    negative: int
    detail: str | None = Field(None, description="what happened (camera alerts)")


class AlertRules(ResponseBody):
    window_s: float
    min_answers: int
    negative_share: float


class AlertRulesPut(RequestBody):
    window_s: float | None = Field(None, gt=0)
    min_answers: int | None = Field(None, ge=1)
    negative_share: float | None = Field(None, gt=0, le=1)


class Case(ResponseBody):
    id: int
    status: str
    note: str
    created: float
    updated: float
    rating: dict[str, Any]


class CasePut(RequestBody):
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    note: str | None = None


class Officer(ResponseBody):
    id: str
    name: str
    title: str
    phone: str | None
    photo: str | None


class OfficerPut(RequestBody):
    name: str = Field(min_length=1)
    title: str | None = None
    phone: str | None = None
    photo: str | None = None


class PhotoStored(ResponseBody):
    officer: str
    sha256: str
    bytes: int


class Desk(ResponseBody):
    id: str
    name: str
    kiosk: str | None
    cameras: list[str] = Field([], description="the desk cameras watching it")


class DeskPut(RequestBody):
    name: str = Field(min_length=1)
    kiosk: str | None = None


class Shift(ResponseBody):
    id: int
    desk: str
    officer: str
    start: str
    end: str


class ShiftCreate(RequestBody):
    desk: str
    officer: str
    start: str = Field(description="ISO 8601 time with zone")
    end: str = Field(description="ISO 8601 time with zone")


class Deleted(ResponseBody):
    deleted: str


Notice = Annotated[str, Field(min_length=1, max_length=200)]


class Contact(RequestBody):
    name: str = Field(min_length=1, max_length=100)
    title: str = Field("", max_length=100)
    phone: str = Field(min_length=3, max_length=24,
                       description="digits, spaces, '+', '.', '-' (e.g. 0251 3861 234)")


class PublicInfoPut(RequestBody):
    contacts: list[Contact] = Field(default_factory=list, max_length=30,
                                    description="leaders' and officials' public phone numbers")
    hotline: str = Field("", max_length=100)
    notices: list[Notice] = Field(default_factory=list, max_length=5,
                                  description="short notices, each at most 200 characters")


class PublicInfo(ResponseBody):
    contacts: list[dict[str, str]]
    hotline: str
    notices: list[str]
    updated: float | None
