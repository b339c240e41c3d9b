"""The data of the ``rating`` and ``rating_detail`` events the kiosk records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from kiosk.flow import Answer
from kiosk.settings import KioskSettings, Officer
from wire.messages import format_ts
from wire.rating import level_of


def rating_data(
    answer: Answer, settings: KioskSettings, *, kiosk: str, officer: Officer,
    when: dt.datetime, clock_synced: bool, misuse: str | None, source: str, follow_up: bool,
    language: str = "vi",
) -> dict[str, Any]:
    """Everything a leader needs to trust one answer, self-contained."""
    level = level_of(answer.scale, answer.level)
    local = when.astimezone(settings.zone)
    return {
        "level": answer.level,
        "scale": answer.scale,
        "label": level.vi,
        "reasons": list(answer.reasons),
        "dossier_code": answer.dossier or None,
        "officer": _officer(officer),
        "desk": settings.desk,
        "desk_id": settings.desk_id,
        "kiosk": kiosk,
        "ts_utc": format_ts(when),
        "ts_local": local.isoformat(timespec="milliseconds"),
        "timezone": settings.timezone,
        "clock_synced": clock_synced,
        "misuse": misuse is not None,
        "misuse_reason": misuse,
        "source": source,
        "follow_up": follow_up,
        "language": language,
    }


def detail_data(answer: Answer, timed_out: bool) -> dict[str, Any]:
    """What the citizen added after the tap, pointing at the rating's event id."""
    return {
        "rating_id": answer.rating_id,
        "reasons": list(answer.reasons),
        "dossier_code": answer.dossier or None,
        "timed_out": timed_out,
    }


def _officer(officer: Officer) -> dict[str, Any] | None:
    if officer.id is None and not officer.name:
        return None
    return {k: v for k, v in dataclasses.asdict(officer).items() if k in ("id", "name", "title")}
