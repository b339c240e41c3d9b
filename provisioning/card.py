"""A device's card: what the controller needs to know of a device provisioned elsewhere.

``thanthien-provision`` writes one ``<id>.card.json`` per device beside its boot
bundle, on the technician's machine and offline if need be; the controller
imports it, then or much later (``thanthien-controller device import``, the
console, ``POST /api/v1/devices/import``). A card holds no secret: the broker
password's ``$7$`` hash, never the password; the camera's public key, never its
private half.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any

from wire.errors import TopicError
from wire.topics import check_device_id

FORMAT = "thanthien-card/1"
ROLES = ("kiosk", "speaker", "camera")
_HASH = re.compile(r"\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
_KEY = re.compile(r"[0-9a-f]{64}")
_DESK = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
MAX_CARD_BYTES = 16 * 1024


class CardError(ValueError):
    """A card that cannot be used: the message names the field and what was expected."""


@dataclasses.dataclass(frozen=True)
class DeviceCard:
    device_id: str
    role: str
    password_hash: str
    hamlet: str | None = None
    desk: str | None = None
    label: str | None = None
    camera_key: str | None = None  # the camera's Ed25519 public key, 64 hex digits
    created: str = ""  # ISO 8601, when the card was made

    def __post_init__(self) -> None:
        try:
            check_device_id(self.device_id)
        except TopicError as exc:
            raise CardError(f"card id: {exc}") from None
        if self.role not in ROLES:
            raise CardError(f"card {self.device_id}: role {self.role!r}: expected one of "
                            f"{', '.join(ROLES)}")
        if not isinstance(self.password_hash, str) or not _HASH.fullmatch(self.password_hash):
            raise CardError(f"card {self.device_id}: password_hash: expected a Mosquitto "
                            "'$7$iterations$salt$hash' line")
        for name in ("hamlet", "label"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()
                                      or len(value) > 100 or "\n" in value):
                raise CardError(f"card {self.device_id}: {name} {str(value)[:40]!r}: expected "
                                "1-100 characters on one line")
        if self.desk is not None and (not isinstance(self.desk, str)
                                      or not _DESK.fullmatch(self.desk)):
            raise CardError(f"card {self.device_id}: desk {str(self.desk)[:40]!r}: expected "
                            "1-63 of a-z, 0-9, '-', '_'")
        if self.desk is not None and self.role == "speaker":
            raise CardError(f"card {self.device_id}: a speaker has a hamlet, not a desk")
        if self.camera_key is not None and (self.role != "camera" or not isinstance(
                self.camera_key, str) or not _KEY.fullmatch(self.camera_key)):
            raise CardError(f"card {self.device_id}: camera_key: expected 64 hex digits, "
                            "on a camera's card only")

    def to_json(self) -> str:
        body = {"format": FORMAT, **{k: v for k, v in dataclasses.asdict(self).items()
                                     if v is not None}}
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "card") -> DeviceCard:
        """Parse one card; :class:`CardError` names the file and what was wrong."""
        if len(text) > MAX_CARD_BYTES:
            raise CardError(f"{source}: {len(text)} bytes: a card is at most {MAX_CARD_BYTES}")
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CardError(f"{source}: not JSON: {exc}") from None
        return cls.from_dict(raw, source=source)

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "card") -> DeviceCard:
        if not isinstance(raw, dict):
            raise CardError(f"{source}: expected a JSON object")
        if raw.get("format") != FORMAT:
            raise CardError(f"{source}: format {raw.get('format')!r}: expected {FORMAT!r} "
                            "(a file written by thanthien-provision)")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - fields - {"format"})
        if unknown:
            raise CardError(f"{source}: unknown field(s) {unknown}")
        for key in ("device_id", "role", "password_hash"):
            if key not in raw:
                raise CardError(f"{source}: lacks {key}")
        return cls(**{k: v for k, v in raw.items() if k != "format"})


def check_device(device_id: str, role: str, *, hamlet: str | None = None,
                 desk: str | None = None, label: str | None = None) -> None:
    """Check a device's fields as its card would, before it has credentials (a batch's
    rows, an enrolment token's device); :class:`CardError` names the field."""
    DeviceCard(device_id, role, _NO_HASH, hamlet=hamlet, desk=desk, label=label)


_NO_HASH = "$7$1$AA==$AA=="  # stands in for the hash the device does not have yet


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
