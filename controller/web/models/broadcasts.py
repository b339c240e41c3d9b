"""Bodies of the loudspeakers' routes: audio library, broadcast items, receipts, settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from controller.web.models import JsonObject, RequestBody, ResponseBody, RowId

Level = Literal["normal", "priority", "emergency"]


class Audio(ResponseBody):
    id: int
    title: str
    filename: str | None
    format: str
    source_sha256: str
    source_bytes: int
    duration_s: float
    loudness_lufs: float
    gain_db: float
    target_lufs: float
    sha256: str
    bytes: int
    created: float


class BroadcastCreate(RequestBody):
    audio_id: RowId
    start: str = Field(description="ISO 8601; local time (Asia/Ho_Chi_Minh) without offset")
    rrule: str | None = Field(None, description="RFC 5545 recurrence, e.g. FREQ=WEEKLY;BYDAY=MO")
    repeat_s: float | None = None
    expires: str | None = None
    targets: JsonObject = Field(default_factory=lambda: {"all": True},
                                description="{all: true}, {hamlets: [..]} or {speakers: [..]}")
    level: Level = "normal"
    overlap: Literal["reject", "order"] = "reject"
    title: str | None = None


class BroadcastCheck(ResponseBody):
    ok: bool = Field(description="false when it would be refused for quiet hours or overlaps")
    problems: list[str]
    speakers: list[str]
    next: list[str] = Field(description="the next occurrences (UTC)")


class EmergencyCreate(RequestBody):
    audio_id: RowId
    targets: JsonObject = Field(default_factory=lambda: {"all": True})
    repeat_s: float | None = None
    expires_in_s: float | None = None
    lead_s: float | None = None
    title: str | None = None
    replaces: RowId | None = Field(None, description="the emergency this one supersedes; "
                                   "required when one is active on any of its speakers")


class Broadcast(ResponseBody):
    id: int
    title: str
    audio_id: int
    level: str
    start: str
    rrule: str | None
    repeat_s: float | None
    expires: str | None
    targets: dict[str, Any]
    overlap: str
    status: str
    created: float
    cancelled: float | None


class SpeakerReceipt(ResponseBody):
    device: str
    hamlet: str | None
    status: str
    reason: str | None
    started: str | None
    ended: str | None
    played_s: float | None


class OccurrenceReceipts(ResponseBody):
    occurrence: str
    scheduled: str
    speakers: list[SpeakerReceipt]


class QuietHours(ResponseBody):
    quiet_hours: list[str]


class QuietHoursPut(RequestBody):
    from_: str = Field(alias="from", description="HH:MM local")
    to: str = Field(description="HH:MM local")


class QuietHoursSet(QuietHours):
    items_now_in_quiet_hours: list[int]


class VolumePut(RequestBody):
    # Bounds checked by the domain, whose message says "from 0 to 1".
    volume: float = Field(json_schema_extra={"minimum": 0, "maximum": 1})


class Volume(ResponseBody):
    scope: str
    key: str
    volume: float
    speakers: list[str]
