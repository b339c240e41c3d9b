"""Apology letters ("Thư xin lỗi") to citizens who were served badly: the commune's plan
asks for one ("gửi thư xin lỗi … thiếu sót, phiền hà").

A letter belongs to a follow-up case. Its fields are drawn from the case (the
dossier code, the day of service from the rating's local day, the officer and
desk, what went wrong from the reasons given) and staff may edit them before
generating the DOCX: what they set is stored in ``letters`` (a field set back
to null returns to its default). Each generation is counted; the first one
counts as the letter sent, for the periodic report.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.documents import commune, reasons
from controller.documents.layout import OfficialDocument, short_date
from controller.errors import InvalidRequest, NotFound, _t
from controller.ratings.cases import get_case
from wire.messages import parse_ts

#: Fields staff may edit, with the most characters each may hold.
EDITABLE = {"recipient": 200, "what_went_wrong": 2000, "remedy": 4000, "number": 20}
DEFAULT_REMEDY = (
    "Ủy ban nhân dân xã đã chấn chỉnh, nhắc nhở cán bộ, công chức có liên quan; cam kết "
    "hướng dẫn đầy đủ, rõ ràng, giải quyết hồ sơ đúng hẹn và không để xảy ra phiền hà "
    "tương tự. Nếu hồ sơ của Ông/Bà còn vướng mắc, Ủy ban nhân dân xã sẽ trực tiếp hướng "
    "dẫn, hỗ trợ để giải quyết sớm nhất.")
TITLE = "Thư xin lỗi"

_STORED = ("recipient", "what_went_wrong", "remedy", "number", "created", "updated",
           "generated", "first_generated", "last_generated")


def letter(db: sqlite_utils.Database, case_id: int) -> dict[str, Any]:
    """The case's letter: the fields as staff left them, defaults filled in from the case,
    with what the letter is drawn from (dossier code, day, officer, desk, reasons)."""
    case = get_case(db, case_id)
    rating = case["rating"]
    row = db.execute(f"SELECT {', '.join(_STORED)} FROM letters WHERE case_id = ?",
                     (case_id,)).fetchone()
    stored = dict(zip(_STORED, row, strict=True)) if row else {}
    code = rating["dossier_code"]
    defaults = {
        "recipient": "Ông/Bà công dân" + (f" có hồ sơ số {code}" if code else ""),
        "what_went_wrong": reasons.what_went_wrong(rating["reasons"],
                                                   reasons.reason_labels(db)),
        "remedy": DEFAULT_REMEDY,
        "number": "",
    }
    (local_day,) = db.execute("SELECT local_day FROM ratings WHERE event_id = ?",
                              (rating["id"],)).fetchone()
    return {
        "case_id": case_id,
        **{key: stored.get(key) if stored.get(key) is not None else defaults[key]
           for key in EDITABLE},
        "edited": sorted(key for key in EDITABLE if stored.get(key) is not None),
        "dossier_code": code,
        "service_day": local_day or parse_ts(rating["ts"]).date().isoformat(),
        "officer": _named(db, "officers", rating["officer"], "name, title"),
        "desk": _named(db, "desks", rating["desk"], "name"),
        "reasons": rating["reasons"],
        "generated": stored.get("generated", 0),
        "first_generated": stored.get("first_generated"),
        "last_generated": stored.get("last_generated"),
        "updated": stored.get("updated"),
    }


def _named(db: sqlite_utils.Database, table: str, key: str | None,
           columns: str) -> dict[str, Any] | None:
    """An officer's or desk's id with its name (and title), if it is still on record."""
    if key is None:
        return None
    row = db.execute(f"SELECT id, {columns} FROM {table} WHERE id = ?", (key,)).fetchone()
    names = ("id", *(c.strip() for c in columns.split(",")))
    return dict(zip(names, row, strict=True)) if row else {"id": key, "name": key}


def put_letter(writer: Writer, case_id: int, changes: dict[str, Any]) -> None:
    """Store the fields staff edited; a field set to None goes back to its default."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidRequest(_t("letter fields {unknown}: expected some of {fields}"),
                             unknown=sorted(unknown), fields=list(EDITABLE))
    for key, value in changes.items():
        if value is not None and (not isinstance(value, str) or len(value) > EDITABLE[key]):
            raise InvalidRequest(_t("letter {key} {value!r}: expected text of at most {most} "
                                    "characters, or null for the default"), key=key,
                                 value=str(value)[:80], most=EDITABLE[key])
    cleaned = {k: (v.strip() or None) if isinstance(v, str) else None
               for k, v in changes.items()}

    def task(db: sqlite_utils.Database) -> None:
        _check_case(db, case_id)
        now = time.time()
        db.execute("INSERT OR IGNORE INTO letters (case_id, created, updated) VALUES (?, ?, ?)",
                   (case_id, now, now))
        for key, value in cleaned.items():  # keys checked against EDITABLE above
            db.execute(f"UPDATE letters SET {key} = ?, updated = ? WHERE case_id = ?",
                       (value, now, case_id))

    writer.call(task)


def mark_generated(writer: Writer, case_id: int) -> None:
    """Count one more generation of the case's letter (the first is the letter sent)."""
    def task(db: sqlite_utils.Database) -> None:
        _check_case(db, case_id)
        now = time.time()
        db.execute(
            "INSERT INTO letters (case_id, created, updated, generated, first_generated,"
            " last_generated) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (case_id) DO UPDATE SET"
            " generated = generated + 1, first_generated = coalesce(first_generated,"
            " excluded.first_generated), last_generated = excluded.last_generated",
            (case_id, now, now, now, now))

    writer.call(task)


def _check_case(db: sqlite_utils.Database, case_id: int) -> None:
    if db.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
        raise NotFound(_t("no case {id}"), id=case_id)


def letter_docx(fields: dict[str, Any], profile: dict[str, Any], today: dt.date) -> bytes:
    """The letter as a DOCX in the Decree 30 layout, dated ``today``."""
    doc = OfficialDocument()
    number = f"{fields['number'] or '      '}/{profile['letter_symbol']}"
    doc.header(commune.body_lines(profile), number, profile["place"], today)
    doc.title(TITLE)
    doc.addressee(fields["recipient"])
    for text in letter_paragraphs(fields, profile):
        doc.paragraph(text)
    doc.closing(["Như trên"], profile["signing_for"], profile["leader_position"],
                profile["leader_name"])
    return doc.to_bytes()


def letter_paragraphs(fields: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """The body of the letter, paragraph by paragraph."""
    body = f"{commune.BODY} {commune.in_text(profile['name'])}"
    day = dt.date.fromisoformat(fields["service_day"])
    visit = (f"Ngày {short_date(day)}, Ông/Bà đến liên hệ giải quyết thủ tục hành chính tại "
             f"Bộ phận tiếp nhận và trả kết quả (bộ phận một cửa) của {body}")
    if fields["dossier_code"]:
        visit += f", hồ sơ số {fields['dossier_code']}"
    officer = fields["officer"]
    if officer:
        title = officer.get("title")
        visit += f", do {officer['name']}" + (f" – {title}" if title else "") + " tiếp nhận"
    if fields["desk"]:
        visit += f" tại {fields['desk']['name']}"
    return [
        visit + ".",
        "Qua ý kiến đánh giá của Ông/Bà trên thiết bị lấy ý kiến sự hài lòng tại bộ phận "
        f"một cửa, {body} được biết Ông/Bà chưa hài lòng về {fields['what_went_wrong']}.",
        f"{body} chân thành xin lỗi Ông/Bà vì sự chậm trễ, thiếu sót, phiền hà nêu trên.",
        fields["remedy"],
        f"{body} trân trọng cảm ơn Ông/Bà đã góp ý để chính quyền phục vụ Nhân dân ngày "
        "càng tốt hơn./.",
    ]


def filename(case_id: int) -> str:
    return f"thu-xin-loi-{case_id}.docx"
