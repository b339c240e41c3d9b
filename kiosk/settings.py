"""The kiosk's settings: the node file's ``[kiosk]`` table overlaid by the controller's config.

Parsed once into a typed :class:`KioskSettings`; a config that fails to
parse is refused as a whole (the node reports the refusal) and the kiosk
keeps running with what it had.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

from kiosk.errors import KioskConfigError
from kiosk.i18n import DEFAULT_REASONS, LANGUAGES, nfc, text
from kiosk.misuse import MisuseRules
from kiosk.office_hours import OfficeHours, parse_office_hours
from wire.errors import MessageError
from wire.rating import DEFAULT_SCALE, check_scale, is_dissatisfied


@dataclasses.dataclass(frozen=True)
class Officer:
    """Who serves at the desk: shown on the idle screen and carried by each rating."""

    id: str | None = None
    name: str = ""
    title: str = ""
    photo: str | None = None  # a path on the kiosk
    photo_sha256: str | None = None  # a photo the controller holds (see kiosk/photos.py)


@dataclasses.dataclass(frozen=True)
class Shift:
    """An officer on duty at this desk from ``start`` to ``end`` (aware datetimes)."""

    officer: Officer
    start: dt.datetime
    end: dt.datetime


@dataclasses.dataclass(frozen=True)
class Contact:
    """An official's public phone number (the commune's plan: "công khai số điện thoại")."""

    name: str
    title: str
    phone: str

    def line(self) -> str:
        who = f"{self.title} {self.name}" if self.title else self.name
        return f"{who}: {self.phone}"


@dataclasses.dataclass(frozen=True)
class PublicInfo:
    """The commune's public information, managed once by the controller for every kiosk."""

    contacts: tuple[Contact, ...] = ()
    hotline: str = ""
    notices: tuple[str, ...] = ()

    #: Contacts shown together on one page of the information band.
    PER_PAGE = 2

    def pages(self) -> tuple[dict[str, str], ...]:
        """The rotating pages ({vi, en}): the phone numbers a few at a time, then notices."""
        out = []
        for i in range(0, len(self.contacts), self.PER_PAGE):
            lines = "\n".join(c.line() for c in self.contacts[i:i + self.PER_PAGE])
            out.append({lang: f"{text('public_phones', lang)}\n{lines}" for lang in LANGUAGES})
        for notice in self.notices:
            out.append({lang: f"{text('notice', lang)}: {notice}" for lang in LANGUAGES})
        return tuple(out)


@dataclasses.dataclass(frozen=True)
class Pins:
    """GPIO pins (BCM names or numbers): one button and one LED per level, best first."""

    buttons: tuple[str, ...] = ()
    leds: tuple[str, ...] = ()
    buzzer: str | None = None


@dataclasses.dataclass(frozen=True)
class KioskSettings:
    """Everything the kiosk's behaviour depends on; safe defaults throughout."""

    language: str = "vi"
    scale: int = DEFAULT_SCALE
    reasons: tuple[dict[str, str], ...] = DEFAULT_REASONS
    follow_up_levels: tuple[int, ...] | None = None  # None: the scale's dissatisfied levels
    ask_dossier: bool = False
    thank_you_s: float = 3.0
    idle_timeout_s: float = 20.0
    misuse: MisuseRules = MisuseRules()
    commune: str = "UBND xã"
    desk: str = "Bộ phận một cửa"
    desk_id: str | None = None
    officer: Officer = Officer()
    duty: tuple[Shift, ...] = ()
    info: tuple[dict[str, str], ...] = ()  # each {vi, en}; plain text counts as vi
    info_rotate_s: float = 8.0
    public_info: PublicInfo | None = None  # from the controller; replaces ``info`` when set
    office_hours: OfficeHours = OfficeHours()
    timezone: str = "Asia/Ho_Chi_Minh"
    pins: Pins = Pins()

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def photo_hashes(self) -> set[str]:
        """Every photo the officer and the roster name."""
        officers = [self.officer, *(s.officer for s in self.duty)]
        return {o.photo_sha256 for o in officers if o.photo_sha256}

    def info_items(self) -> tuple[dict[str, str], ...]:
        """What the idle screen's information band rotates through: the commune's public
        information when the controller sent some, else this kiosk's own ``info``."""
        if self.public_info is not None:
            pages = self.public_info.pages()
            if pages or self.public_info.hotline:
                return pages
        return self.info

    @property
    def hotline(self) -> str:
        return self.public_info.hotline if self.public_info is not None else ""

    def asks_why(self, level: int) -> bool:
        """Whether ``level`` is followed by the "why?" screen."""
        if self.follow_up_levels is not None:
            return level in self.follow_up_levels
        return is_dissatisfied(self.scale, level)

    def officer_at(self, when: dt.datetime) -> Officer:
        """The officer on duty at ``when``: the roster's shift, else the configured officer."""
        for shift in self.duty:
            if shift.start <= when < shift.end:
                return shift.officer
        return self.officer


def parse_settings(raw: dict[str, Any], base: KioskSettings | None = None) -> KioskSettings:
    """Overlay the keys of ``raw`` on ``base`` (defaults if None); unknown keys are ignored."""
    if not isinstance(raw, dict):
        raise KioskConfigError(f"kiosk config must be an object, not {type(raw).__name__}")
    s = base or KioskSettings()
    changes: dict[str, Any] = {}
    for key, parse in _PARSERS.items():
        if key in raw:
            changes[key] = parse(raw[key])
    if any(k in raw for k in ("misuse_window_s", "burst_count", "burst_window_s")):
        changes["misuse"] = _misuse(raw, s.misuse)
    return dataclasses.replace(s, **changes)


def _language(value: Any) -> str:
    if value not in LANGUAGES:
        raise KioskConfigError(f"language {value!r}: expected one of {LANGUAGES}")
    return str(value)


def _scale(value: Any) -> int:
    try:
        return check_scale(value)
    except MessageError as exc:
        raise KioskConfigError(str(exc)) from None


def _seconds(name: str, lo: float, hi: float) -> Any:
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise KioskConfigError(f"{name} {value!r}: expected a number of seconds {lo}..{hi}")
        return float(value)
    return parse


def _text(name: str) -> Any:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise KioskConfigError(f"{name} {value!r}: expected text")
        return nfc(value)
    return parse


def _reasons(value: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise KioskConfigError(f"reasons {value!r}: expected a non-empty list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not (
                isinstance(item.get("vi"), str)):
            raise KioskConfigError(f"reason {item!r}: expected {{key, vi, en}}")
        out.append({k: nfc(v) for k, v in item.items() if isinstance(v, str)})
    return tuple(out)


def _officer(value: Any) -> Officer:
    if not isinstance(value, dict):
        raise KioskConfigError(f"officer {value!r}: expected {{id, name, title, photo}}")
    return Officer(id=value.get("id"), name=nfc(value.get("name") or ""),
                   title=nfc(value.get("title") or ""), photo=value.get("photo"),
                   photo_sha256=value.get("photo_sha256"))


def _duty(value: Any) -> tuple[Shift, ...]:
    if not isinstance(value, list):
        raise KioskConfigError(f"duty {value!r}: expected a list of shifts")
    shifts = []
    for item in value:
        try:
            start = dt.datetime.fromisoformat(item["start"].replace("Z", "+00:00"))
            end = dt.datetime.fromisoformat(item["end"].replace("Z", "+00:00"))
            officer = _officer(item["officer"])
        except (KeyError, TypeError, AttributeError, ValueError):
            raise KioskConfigError(
                f"duty shift {item!r}: expected {{start, end, officer}} with ISO times") from None
        if start.tzinfo is None or end.tzinfo is None:
            raise KioskConfigError(f"duty shift {item!r}: times need a time zone")
        shifts.append(Shift(officer, start, end))
    return tuple(shifts)


def _levels(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in value):
        raise KioskConfigError(f"follow_up_levels {value!r}: expected a list of levels 1..5")
    return tuple(value)


def _info(value: Any) -> tuple[dict[str, str], ...]:
    items = []
    for item in value if isinstance(value, list) else [None]:
        if isinstance(item, str):
            item = {"vi": item}
        if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
            raise KioskConfigError(f"info {value!r}: expected a list of texts or {{vi, en}}")
        items.append({k: nfc(v) for k, v in item.items()})
    return tuple(items)


def _public_info(value: Any) -> PublicInfo | None:
    if value is None:  # removed by the controller: back to the kiosk's own info
        return None
    if not isinstance(value, dict):
        raise KioskConfigError(f"public_info {value!r}: expected {{contacts, hotline, notices}}")
    contacts, notices = value.get("contacts") or [], value.get("notices") or []
    hotline = value.get("hotline") or ""
    if not isinstance(contacts, list) or not isinstance(notices, list) or not all(
            isinstance(n, str) for n in notices) or not isinstance(hotline, str):
        raise KioskConfigError(f"public_info {value!r}: expected lists of contacts and notices")
    out = []
    for item in contacts:
        if not isinstance(item, dict) or not all(
                isinstance(item.get(k, ""), str) for k in ("name", "title", "phone")):
            raise KioskConfigError(f"public_info contact {item!r}: expected {{name, title, phone}}")
        out.append(Contact(nfc(item.get("name", "")), nfc(item.get("title", "")),
                           nfc(item.get("phone", ""))))
    return PublicInfo(tuple(out), nfc(hotline), tuple(nfc(n) for n in notices))


def _timezone(value: Any) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, TypeError, ValueError):
        raise KioskConfigError(f"timezone {value!r}: expected an IANA zone name") from None
    return str(value)


def _pins(value: Any) -> Pins:
    if not isinstance(value, dict):
        raise KioskConfigError(f"pins {value!r}: expected {{buttons, leds, buzzer}}")
    buttons = tuple(str(p) for p in value.get("buttons", ()))
    leds = tuple(str(p) for p in value.get("leds", ()))
    if leds and len(leds) != len(buttons):
        raise KioskConfigError(f"pins: {len(leds)} LEDs for {len(buttons)} buttons; "
                               "expected one LED per button")
    buzzer = value.get("buzzer")
    return Pins(buttons, leds, None if buzzer is None else str(buzzer))


def _misuse(raw: dict[str, Any], rules: MisuseRules) -> MisuseRules:
    count = raw.get("burst_count", rules.burst_count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise KioskConfigError(f"burst_count {count!r}: expected an integer of at least 2")
    return MisuseRules(
        window_s=_seconds("misuse_window_s", 0, 600)(raw.get("misuse_window_s", rules.window_s)),
        burst_count=count,
        burst_window_s=_seconds("burst_window_s", 1, 3600)(
            raw.get("burst_window_s", rules.burst_window_s)),
    )


def _bool(name: str) -> Any:
    def parse(value: Any) -> bool:
        if not isinstance(value, bool):
            raise KioskConfigError(f"{name} {value!r}: expected true or false")
        return value
    return parse


_PARSERS: dict[str, Any] = {
    "language": _language,
    "scale": _scale,
    "reasons": _reasons,
    "follow_up_levels": _levels,
    "ask_dossier": _bool("ask_dossier"),
    "thank_you_s": _seconds("thank_you_s", 0.5, 60),
    "idle_timeout_s": _seconds("idle_timeout_s", 3, 600),
    "commune": _text("commune"),
    "desk": _text("desk"),
    "desk_id": _text("desk_id"),
    "officer": _officer,
    "duty": _duty,
    "info": _info,
    "info_rotate_s": _seconds("info_rotate_s", 1, 600),
    "public_info": _public_info,
    "office_hours": parse_office_hours,
    "timezone": _timezone,
    "pins": _pins,
}
