"""What citizens can say went wrong, in the documents' words.

A kiosk offers reasons after a dissatisfied answer: its config's ``reasons``
(``[{key, vi, en}]``) or else the kiosk's defaults (``kiosk/i18n.py``
``DEFAULT_REASONS``, repeated here because the controller imports no node
role; a test keeps the two in step). Ratings store only the keys; reports
show each key's label, and apology letters a phrase that fits the sentence
"Ông/Bà chưa hài lòng về …".
"""

from __future__ import annotations

import json

import sqlite_utils

#: The kiosk's default reasons: key -> the label the citizen tapped.
DEFAULT_LABELS = {
    "waited": "Chờ quá lâu",
    "attitude": "Thái độ chưa tốt",
    "guidance": "Hướng dẫn chưa rõ",
    "papers": "Yêu cầu bổ sung giấy tờ nhiều lần",
}

#: Key -> what the apology letter says went wrong.
LETTER_PHRASES = {
    "waited": "thời gian chờ đợi quá lâu",
    "attitude": "thái độ phục vụ của cán bộ, công chức chưa tốt",
    "guidance": "việc hướng dẫn thủ tục chưa rõ ràng",
    "papers": "việc yêu cầu bổ sung giấy tờ nhiều lần",
}

#: When the citizen gave no reason.
NO_REASON_PHRASE = "việc tiếp nhận, giải quyết hồ sơ tại bộ phận một cửa"


def reason_labels(db: sqlite_utils.Database) -> dict[str, str]:
    """Every known key's Vietnamese label: the defaults, then what kiosks are configured
    with (a commune may rename a reason or add its own)."""
    labels = dict(DEFAULT_LABELS)
    rows = db.execute("SELECT desired_config FROM devices WHERE role = 'kiosk'"
                      " AND desired_config IS NOT NULL ORDER BY id").fetchall()
    for (text,) in rows:
        try:
            configured = json.loads(text).get("reasons")
        except (ValueError, AttributeError):
            continue
        for reason in configured if isinstance(configured, list) else []:
            if isinstance(reason, dict) and isinstance(reason.get("key"), str) and (
                    isinstance(reason.get("vi"), str)):
                labels[reason["key"]] = reason["vi"]
    return labels


def what_went_wrong(reasons: list[str], labels: dict[str, str]) -> str:
    """The letter's phrase for ``reasons``: "thời gian chờ đợi quá lâu và …"."""
    phrases = [LETTER_PHRASES.get(key) or _lower_first(labels.get(key, key)) for key in reasons]
    phrases = list(dict.fromkeys(p for p in phrases if p))
    if not phrases:
        return NO_REASON_PHRASE
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " và " + phrases[-1]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
