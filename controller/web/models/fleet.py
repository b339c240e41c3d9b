"""Bodies of the fleet's routes: devices, commands, desired config, health."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from controller.fleet.commands import MAX_TTL_S
from controller.fleet.registry import ROLES
from controller.web.models import JsonObject, RequestBody, ResponseBody

Role = Literal[ROLES]  # type: ignore[valid-type]


class DeviceCreate(RequestBody):
    id: str = Field(description="device id, also its broker username: a-z, 0-9, '-'")
    role: Role  # type: ignore[valid-type]
    label: str | None = None
    hamlet: str | None = None


class ConfigVersions(ResponseBody):
    reported: int | None
    desired: int


class Device(ResponseBody):
    id: str
    role: str | None
    status: Literal["approved", "pending", "revoked"]
    label: str | None
    hamlet: str | None
    online: bool
    last_seen: float | None
    sw: str | None
    mqtt_protocol: int | None
    config_version: ConfigVersions
    telemetry: dict[str, Any] | None
    serial: str | None = Field(None, description="the hardware's serial, as it claimed "
                                                 "enrolment (null: not known)")
    credentials_issued: float | None = Field(None, description="when its current "
                                             "credentials were imported (its card)")


class DeviceAvailability(ResponseBody):
    id: str
    role: str
    observed_s: float = Field(description="seconds of the period the device was watched: "
                                          "since it was registered and history was kept, "
                                          "up to now")
    online_s: float = Field(description="seconds of those it was online")
    availability: float | None = Field(description="online_s / observed_s (null: not "
                                                   "watched in the period)")


class RoleAvailability(ResponseBody):
    role: str
    devices: int
    observed_s: float
    online_s: float
    availability: float | None


class Availability(ResponseBody):
    since: float = Field(description="the period's start, Unix seconds")
    until: float = Field(description="the period's end (exclusive), Unix seconds")
    tracked_from: float = Field(description="when the controller began keeping online "
                                            "history: time before it is not counted")
    devices: list[DeviceAvailability]
    roles: list[RoleAvailability]


class DeviceApproved(ResponseBody):
    id: str
    role: str
    status: str


class DeviceRevoked(ResponseBody):
    id: str
    role: str | None
    status: Literal["revoked"]
    broker_account_removed: bool = Field(
        description="its broker account was there and is now removed")
    broker_reloaded: bool = Field(
        description="the running broker re-read its accounts, closing the device's "
                    "connection; false when no running broker was found")


class CommandCreate(RequestBody):
    name: str = Field(min_length=1, description="the command's name, e.g. ping, restart")
    args: JsonObject = Field(default_factory=dict)
    ttl_s: float = Field(300, description="seconds before it expires",
                         json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_TTL_S})


class Command(ResponseBody):
    id: str
    device: str
    name: str
    args: dict[str, Any]
    expires: str
    status: str
    created: float | None = None
    reason: str | None = None
    result: Any = None


class ConfigPut(RequestBody):
    config: JsonObject


class ConfigPatch(RequestBody):
    config: JsonObject = Field(description="a JSON merge patch (RFC 7396) of the desired "
                                           "config: keys set to null are removed, objects "
                                           "merged, other keys left as they are")


class ConfigVersion(ResponseBody):
    version: int


class ConfigPatched(ConfigVersion):
    config: dict[str, Any] = Field(description="the desired config after the patch")


class DesiredConfig(ResponseBody):
    version: int
    config: dict[str, Any]
    reported_version: int | None


class ScreenshotAsk(RequestBody):
    base_url: str | None = Field(None, description="how the device reaches this API")


class Health(ResponseBody):
    status: Literal["ok", "degraded"]
    reasons: list[str]
    mqtt_connected: bool
    schema_version: int
    uptime_s: float
    counts: dict[str, int]
    rejections: dict[str, int]
    recent_rejections: list[dict[str, Any]]


class QuarantinedEvent(ResponseBody):
    event_id: str
    device: str
    type: str
    reason: str
    quarantined: float
    data: str | None = Field(description="the event's data as the device sent it (JSON)")


class CardImported(ResponseBody):
    id: str
    role: str
    hamlet: str | None
    desk: str | None
    replaced: bool = Field(description="the id was known: new hardware took its place, the "
                                       "old credentials are refused from now on")
    broker_reloaded: bool = Field(description="the running broker re-read its accounts")


class EnrolmentCreate(RequestBody):
    device_id: str
    role: Literal["kiosk", "speaker", "camera"]
    hamlet: str | None = None
    desk: str | None = None
    label: str | None = None
    ttl_h: float = Field(168, ge=1 / 60, le=90 * 24, description="hours until it expires")


class EnrolmentToken(ResponseBody):
    token: str = Field(description="shown once: put it in the device's bundle")
    device_id: str
    role: str
    expires: float


class Enrolment(ResponseBody):
    device_id: str
    role: str
    hamlet: str | None
    desk: str | None
    label: str | None
    created: float
    created_by: str | None
    expires: float
    expired: bool
    status: Literal["open", "claimed"]
    claimed: float | None
    serial: str | None
    model: str | None


class EnrolClaim(RequestBody):
    token: str = Field(max_length=200)
    serial: str = Field(max_length=64)
    model: str | None = Field(None, max_length=100)
    password_hash: str = Field(max_length=300, description="the broker password the device "
                               "made, as Mosquitto's '$7$...' hash: the password stays on it")


class EnrolStatus(ResponseBody):
    device_id: str
    status: Literal["pending", "approved"]


class BundleCreate(RequestBody):
    device_id: str = Field(max_length=63)
    role: Literal["kiosk", "speaker", "camera"]
    hamlet: str | None = Field(None, max_length=100)
    desk: str | None = Field(None, max_length=63)
    label: str | None = Field(None, max_length=100)
    os: Literal["trixie", "bookworm"] | None = Field(None, description="default: the site's")
    wifi_ssid: str | None = Field(None, max_length=32)
    wifi_key: str | None = Field(None, max_length=64, description="used for this card only; "
                                 "never stored")
    apn: str | None = Field(None, max_length=100)
    enrol: bool = Field(False, description="enrol by claim (a one-time token in the bundle) "
                                           "instead of importing its card now")
    replace: bool = Field(False, description="the id is known: new hardware takes its place")


class SequenceAnomaly(ResponseBody):
    device: str
    kind: Literal["gap", "reset"]
    first_seq: int
    last_seq: int = Field(description="a gap's last missing seq; a reset's highest seq before")
    missing: int | None = Field(description="a gap's events that never came")
    detected: float
    detail: str | None
