"""The commune's public information: officials' phone numbers, the hotline, short notices.

The commune's plan publishes the phone numbers of its leaders and officials
("công khai số điện thoại"). One commune-wide document, managed once here,
is merged into every kiosk's desired config under ``public_info`` (its desk
and officer kept), so every kiosk's idle screen shows it, offline too.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from typing import Any

import sqlite_utils

from controller.db.connection import ReaderPool
from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t
from controller.fleet.desired_config import DesiredConfig, get_desired

MAX_CONTACTS = 30
MAX_NOTICES = 5
MAX_NOTICE = 200
MAX_NAME = 100
MAX_HOTLINE = 100
#: Loose: digits with spaces, dots, dashes, a leading + ("0251 3861 234", "+84 912.345.678").
PHONE_RE = re.compile(r"^\+?[0-9][0-9 .\-]{1,23}$")
CONFIG_KEY = "public_info"
log = logging.getLogger(__name__)
EMPTY: dict[str, Any] = {"contacts": [], "hotline": "", "notices": []}


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value.strip())


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(_t("{field} {value!r}: expected text"), field=field, value=value)
    text = _nfc(value)
    if required and not text:
        raise InvalidRequest(_t("{field}: must not be empty"), field=field)
    if len(text) > limit:
        raise InvalidRequest(_t("{field}: {length} characters, at most {limit}"), field=field,
                             length=len(text), limit=limit)
    return text


def _phone(value: Any, field: str) -> str:
    phone = _text(value, field, 24, required=True)
    if not PHONE_RE.match(phone) or sum(c.isdigit() for c in phone) < 3:
        raise InvalidRequest(_t("{field} {phone!r}: expected a phone number (digits, spaces, "
                                "'+', '.', '-')"), field=field, phone=phone)
    return phone


def validate(body: Any) -> dict[str, Any]:
    """The document ``body`` describes, normalised; InvalidRequest naming the bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest(_t("public information must be an object, not {type}"),
                             type=type(body).__name__)
    unknown = sorted(set(body) - set(EMPTY))
    if unknown:
        raise InvalidRequest(_t("{field}: unknown field; expected contacts, hotline, notices"),
                             field=unknown[0])
    contacts = body.get("contacts") or []
    if not isinstance(contacts, list):
        raise InvalidRequest(_t("contacts {value!r}: expected a list of {{name, title, phone}}"),
                             value=contacts)
    if len(contacts) > MAX_CONTACTS:
        raise InvalidRequest(_t("contacts: {count} entries, at most {most}"),
                             count=len(contacts), most=MAX_CONTACTS)
    out = []
    for i, contact in enumerate(contacts):
        where = f"contacts[{i}]"
        if not isinstance(contact, dict):
            raise InvalidRequest(_t("{where} {value!r}: expected {{name, title, phone}}"),
                                 where=where, value=contact)
        extra = sorted(set(contact) - {"name", "title", "phone"})
        if extra:
            raise InvalidRequest(_t("{where}.{field}: unknown field; expected name, title, "
                                    "phone"), where=where, field=extra[0])
        out.append({"name": _text(contact.get("name"), f"{where}.name", MAX_NAME, required=True),
                    "title": _text(contact.get("title"), f"{where}.title", MAX_NAME),
                    "phone": _phone(contact.get("phone"), f"{where}.phone")})
    notices = body.get("notices") or []
    if not isinstance(notices, list):
        raise InvalidRequest(_t("notices {value!r}: expected a list of short texts"),
                             value=notices)
    if len(notices) > MAX_NOTICES:
        raise InvalidRequest(_t("notices: {count} entries, at most {most}"),
                             count=len(notices), most=MAX_NOTICES)
    return {"contacts": out,
            "hotline": _text(body.get("hotline"), "hotline", MAX_HOTLINE),
            "notices": [_text(n, f"notices[{i}]", MAX_NOTICE, required=True)
                        for i, n in enumerate(notices)]}


def get_public_info(db: sqlite_utils.Database) -> dict[str, Any]:
    """The commune's public information (empty lists and hotline when never set)."""
    row = db.execute("SELECT body, updated FROM public_info WHERE id = 1").fetchone()
    if row is None:
        return {**EMPTY, "updated": None}
    return {**EMPTY, **json.loads(row[0]), "updated": row[1]}


def is_empty(info: dict[str, Any]) -> bool:
    return not (info.get("contacts") or info.get("hotline") or info.get("notices"))


class PublicInfo:
    """Stores the document and keeps every kiosk's desired config in step with it."""

    def __init__(self, writer: Writer, readers: ReaderPool, desired_config: DesiredConfig):
        self.writer, self.readers, self.desired_config = writer, readers, desired_config

    def put(self, body: Any) -> dict[str, Any]:
        """Replace the document (validated first), then push it to every kiosk."""
        doc = validate(body)
        text = json.dumps(doc, ensure_ascii=False)
        self.writer.call(lambda db: db.execute(
            "INSERT INTO public_info (id, body, updated) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated = excluded.updated",
            (text, time.time())))
        self.push_all()
        with self.readers.connection() as db:
            return get_public_info(db)

    def push_all(self) -> list[str]:
        """Merge the document into each approved kiosk's desired config where it differs
        (a kiosk approved later gets it on the next sweep); the kiosks updated."""
        with self.readers.connection() as db:
            info = get_public_info(db)
            info.pop("updated")
            kiosks = [k for (k,) in db.execute(
                "SELECT id FROM devices WHERE role = 'kiosk' AND status = 'approved'"
                " ORDER BY id").fetchall()]
            current = {k: get_desired(db, k)["config"].get(CONFIG_KEY) for k in kiosks}
        wanted = None if is_empty(info) else info
        pushed = []
        for kiosk in kiosks:
            if current[kiosk] != wanted:
                # A merge patch, read and written in one writer task: the desk, officer
                # and duty (and anything a technician set) stay. Every key of the
                # document is present, so the merge replaces it whole.
                try:
                    self.desired_config.patch(kiosk, {CONFIG_KEY: wanted})
                except (InvalidRequest, NotFound) as exc:  # one kiosk must not stop the rest
                    log.warning("public information not pushed to %s: %s", kiosk, exc)
                    continue
                pushed.append(kiosk)
        return pushed
