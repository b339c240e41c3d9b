"""The commune's profile: what every document's header, date line and signature block
say (name, district, province, the place written before the date, the signer) and the
symbols letters and reports are numbered with.

One row, edited by leaders and admins; until someone saves it the defaults below
apply (the demo commune of the plan: UBND xã Tân An, Vĩnh Cửu, Đồng Nai).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from controller.broadcasts.schedule import TIMEZONE
from controller.db.writer import Writer
from controller.errors import InvalidRequest, _t

DEFAULTS: dict[str, Any] = {
    "name": "Xã Tân An",
    "district": "Huyện Vĩnh Cửu",
    "province": "Tỉnh Đồng Nai",
    "place": "Tân An",
    "leader_name": "Nguyễn Văn A",
    "leader_position": "Chủ tịch",
    "signing_for": "TM. Ủy ban nhân dân",
    "letter_symbol": "TXL-UBND",
    "report_symbol": "BC-UBND",
    "report_recipients": ["UBND huyện Vĩnh Cửu", "Phòng Nội vụ huyện"],
}
FIELDS = tuple(DEFAULTS)
TEXT_FIELDS = tuple(f for f in FIELDS if f != "report_recipients")
MAX_TEXT = 200
#: Empty when the signer signs on their own authority ("CHỦ TỊCH" alone).
MAY_BE_EMPTY = ("signing_for",)
MAX_RECIPIENTS = 20

#: The issuing body's first header line; the commune's name follows on the second.
BODY = "Ủy ban nhân dân"


def get_profile(db: sqlite_utils.Database) -> dict[str, Any]:
    """The saved profile, or the defaults (``updated`` None until saved)."""
    row = db.execute(f"SELECT {', '.join(FIELDS)}, updated FROM commune_profile"
                     " WHERE id = 1").fetchone()
    if row is None:
        return {**DEFAULTS, "report_recipients": list(DEFAULTS["report_recipients"]),
                "updated": None}
    profile = dict(zip((*FIELDS, "updated"), row, strict=True))
    profile["report_recipients"] = json.loads(profile["report_recipients"])
    return profile


def put_profile(writer: Writer, changes: dict[str, Any]) -> dict[str, Any]:
    """Change the fields given (the others keep their value); return the profile."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidRequest(_t("commune fields {unknown}: expected some of {fields}"),
                             unknown=sorted(unknown), fields=FIELDS)
    for key in TEXT_FIELDS:
        if key in changes:
            _text(key, changes[key], empty=key in MAY_BE_EMPTY)
    if "report_recipients" in changes:
        _recipients(changes["report_recipients"])

    def task(db: sqlite_utils.Database) -> dict[str, Any]:
        merged = {**get_profile(db), **changes, "updated": time.time()}
        values = [json.dumps(merged[f], ensure_ascii=False) if f == "report_recipients"
                  else merged[f].strip() for f in FIELDS]
        db.execute(f"INSERT OR REPLACE INTO commune_profile (id, {', '.join(FIELDS)}, updated)"
                   f" VALUES (1, {', '.join('?' * len(FIELDS))}, ?)",
                   (*values, merged["updated"]))
        return get_profile(db)

    return writer.call(task)  # type: ignore[no-any-return]


def body_lines(profile: dict[str, Any]) -> list[str]:
    """The issuing body as the header writes it: "ỦY BAN NHÂN DÂN" / "XÃ TÂN AN"."""
    return [BODY, profile["name"]]


def local_today(tz: str = TIMEZONE) -> dt.date:
    """Today in the commune: the date its documents are made on."""
    return dt.datetime.now(ZoneInfo(tz)).date()


def in_text(name: str) -> str:
    """A commune's name inside a sentence: "Xã Tân An" -> "xã Tân An"."""
    return name[:1].lower() + name[1:]


def _text(key: str, value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not (empty or value.strip()):
        raise InvalidRequest(_t("commune {key} {value!r}: expected text of {least} to {most} "
                                "characters"), key=key, value=str(value)[:80],
                             least=0 if empty else 1, most=MAX_TEXT)
    return value


def _recipients(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_RECIPIENTS:
        raise InvalidRequest(_t("report_recipients {value!r}: expected a list of at most {most}"
                                " names"), value=str(value)[:80], most=MAX_RECIPIENTS)
    return [_text("report_recipients item", item) for item in value]
