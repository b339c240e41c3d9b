"""Bodies of the desk cameras' routes: holds, clips, cameras and their keys, uploads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.cameras.clips import STATES as CLIP_STATES
from controller.cameras.holds import MAX_DAYS, MAX_REASON
from controller.cameras.holds import STATES as HOLD_STATES
from controller.web.models import RequestBody, ResponseBody

Time = int | float | str
TIME = ("Unix seconds, or ISO 8601 (without a zone: the commune's time, "
        "e.g. 2026-11-26T17:30)")


class HoldCreate(RequestBody):
    camera: str | None = Field(None, description="one camera; or give `desk`")
    desk: str | None = Field(None, description="every camera at this desk")
    start: Time = Field(description=TIME)
    end: Time = Field(description=TIME + "; at most 4 h after start")
    reason: str = Field(min_length=1, max_length=MAX_REASON)
    days: int | float | None = Field(None, ge=1, le=MAX_DAYS,
                                     description="how long the footage is kept (default 90)")


class Hold(ResponseBody):
    id: str
    camera: str
    desk: str | None
    start: float = Field(description="Unix seconds")
    end: float = Field(description="Unix seconds (exclusive)")
    reason: str
    rating_id: str | None = Field(description="the dissatisfied rating that made it, if any")
    automatic: bool
    created: float
    created_by: str | None
    expires: float
    state: Literal[HOLD_STATES] = Field(  # type: ignore[valid-type]
        description="requested (sent to the camera), then as the camera reports it: waiting "
                    "(still being recorded), held, missing (already gone), released, expired")
    segments: int | None
    bytes: int | None
    updated: float
    clip: Literal[CLIP_STATES] | None = Field(  # type: ignore[valid-type]
        description="its clip's state, if one was asked for")


class Clip(ResponseBody):
    hold: str
    camera: str
    desk: str | None
    start: float
    end: float
    reason: str
    state: Literal[CLIP_STATES] = Field(  # type: ignore[valid-type]
        description="requested, uploading, received (being verified), verified, failed "
                    "(see problems), deleted")
    bytes: int = Field(description="bytes its files take on the controller")
    total: int = Field(description="bytes of footage the camera sends (or is expected to)")
    segments: int | None
    problems: list[str] = Field(description="why it failed, the first problem first")
    video: bool = Field(description="a playable MP4 was made")
    requested: float
    requested_by: str | None
    verified: float | None


class Camera(ResponseBody):
    id: str
    status: str
    online: bool
    last_seen: float | None
    desk: str | None
    public_key: str | None = Field(description="the pinned key clips are verified against")
    new_keys: list[str] = Field(description="other keys it reported, not accepted")
    last_seq: int | None = Field(description="the last segment's seq it reported")
    active_holds: int


class KeyAccept(RequestBody):
    public_key: str = Field(description="the new key, as the camera reported it (64 hex)")


class KeyAccepted(ResponseBody):
    camera: str
    public_key: str
    fingerprint: str


class DeskCameras(RequestBody):
    cameras: list[str] = Field(max_length=8, description="approved devices with role camera")


class DeskCamerasSet(ResponseBody):
    desk: str
    cameras: list[str]


class UploadStatus(ResponseBody):
    manifest: bool
    segments: dict[str, int] = Field(description="seq -> bytes received")


class ManifestStored(ResponseBody):
    segments: int
    bytes: int


class SegmentStored(ResponseBody):
    seq: int
    received: int
    complete: bool
