"""Documents: the model's report for a year of data (goal: <= 5 s, issue #10).

A year is 200,000 ratings at 10 desks (a quarter dissatisfied, each opening a
case, with reasons), 50,000 playback receipts from 80 speakers in 8 hamlets and
100 devices, stored the way ingest stores them (``store_rating`` with the
case hook, ``store_receipt``). Measured: the figures (``report_data``), then
the DOCX and the XLSX from them, on one read connection, best of 3.

``run(quick)`` returns ``(name, value, unit, goal, note)`` rows for ``make bench``.
"""

from __future__ import annotations

import datetime as dt
import functools
import pathlib
import sys
import tempfile
import time
from typing import Any
from zoneinfo import ZoneInfo

from controller.broadcasts.receipts import store_receipt
from controller.broadcasts.schedule import TIMEZONE
from controller.db.connection import connect
from controller.db.writer import open_writer
from controller.documents import commune, reports
from controller.fleet.registry import Registry
from controller.ratings import cases
from controller.ratings.store import store_rating
from wire.messages import format_ts, json_text, new_event

DESKS, SPEAKERS, CAMERAS, HAMLETS = 10, 80, 10, 8
RATINGS, RECEIPTS = 200_000, 50_000
REASONS = (["waited"], ["attitude"], ["guidance", "papers"], [])
BATCH = 5000
LOCAL = ZoneInfo(TIMEZONE)

Row = tuple[str, float, str, str, str]


def seed(db_path: pathlib.Path, ratings: int, receipts: int, year: int) -> None:
    """A year of the commune's data in a new database at ``db_path``."""
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    with open_writer(db_path) as writer:
        registry = Registry(writer)
        kiosks = [f"kiosk-{d:02d}" for d in range(DESKS)]
        speakers = [f"loa-{s:02d}" for s in range(SPEAKERS)]
        for device in kiosks:
            registry.add(device, "kiosk")
        for i, device in enumerate(speakers):
            registry.add(device, "speaker", hamlet=f"Ấp {i % HAMLETS + 1}")
        for c in range(CAMERAS):
            registry.add(f"camera-{c:02d}", "camera")
        writer.call(functools.partial(_roster, kiosks=kiosks, start=start))
        step = dt.timedelta(days=365) / ratings
        for first in range(0, ratings, BATCH):
            events = [_rating_event(kiosks[i % DESKS], i, start + step * i)
                      for i in range(first, min(ratings, first + BATCH))]
            writer.call(functools.partial(_store, events=events, handle=_rating))
        step = dt.timedelta(days=365) / receipts
        for first in range(0, receipts, BATCH):
            events = []
            for i in range(first, min(receipts, first + BATCH)):
                when = start + step * i
                events.append(new_event(speakers[i % SPEAKERS], i // SPEAKERS + 1, "playback", {
                    "status": "played" if i % 10 else "skipped", "occurrence":
                    f"{i // SPEAKERS}@{format_ts(when)}", "scheduled": format_ts(when),
                    "played_s": 120.0}, clock_synced=True, when=when))
            writer.call(functools.partial(_store, events=events, handle=store_receipt))


def _roster(db: Any, kiosks: list[str], start: dt.datetime) -> None:
    for d, kiosk in enumerate(kiosks):
        db.execute("INSERT INTO officers (id, name, title, created) VALUES (?, ?, ?, 0)",
                   (f"cb-{d:02d}", f"Cán bộ {d + 1}", "Công chức"))
        db.execute("INSERT INTO desks (id, name, kiosk, created) VALUES (?, ?, ?, 0)",
                   (f"quay-{d:02d}", f"Quầy {d + 1}", kiosk))
        db.execute("INSERT INTO roster (desk, officer, start, end) VALUES (?, ?, ?, ?)",
                   (f"quay-{d:02d}", f"cb-{d:02d}", format_ts(start),
                    format_ts(start + dt.timedelta(days=366))))


def _rating_event(kiosk: str, i: int, when: dt.datetime) -> dict[str, Any]:
    """Levels in turn; every dissatisfied answer with one of :data:`REASONS`."""
    data = {"level": 1 + i % 4, "scale": 4, "reasons": REASONS[i // 4 % 4] if i % 4 == 3
            else [], "ts_local": when.astimezone(LOCAL).isoformat()}
    return new_event(kiosk, i // DESKS + 1, "rating", data, clock_synced=True, when=when)


def _rating(db: Any, event: dict[str, Any]) -> None:
    cases.open_case(db, store_rating(db, event))


def _store(db: Any, events: list[dict[str, Any]], handle: Any) -> None:
    for event in events:
        db.execute(
            "INSERT INTO events (id, device, seq, type, ts, clock_synced, received, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event["id"], event["device"], event["seq"], event["type"], event["ts"],
             int(event["clock_synced"]), time.time(), json_text(event["data"])))
        handle(db, event)


def _report_s(db_path: pathlib.Path, year: int, repeat: int = 3) -> tuple[float, float]:
    """Best of ``repeat``: (figures, figures + DOCX + XLSX) in seconds."""
    db = connect(db_path)
    try:
        best_data = best_all = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            data = reports.report_data(db, f"{year}-01-01", f"{year + 1}-01-01")
            t1 = time.perf_counter()
            reports.report_docx(data, commune.get_profile(db))
            reports.report_xlsx(data)
            t2 = time.perf_counter()
            best_data, best_all = min(best_data, t1 - t0), min(best_all, t2 - t0)
        return best_data, best_all
    finally:
        db.close()


def run(quick: bool = False) -> list[Row]:
    ratings, receipts = (RATINGS // 10, RECEIPTS // 10) if quick else (RATINGS, RECEIPTS)
    year = dt.date.today().year - 1
    with tempfile.TemporaryDirectory(prefix="thanthien-bench-") as folder:
        path = pathlib.Path(folder) / "controller.db"
        seed(path, ratings, receipts, year)
        data_s, all_s = _report_s(path, year)
    what = f"{ratings:,} ratings, {receipts:,} receipts, {DESKS + SPEAKERS + CAMERAS} devices"
    return [
        ("report_year", round(all_s, 2), "s", "<= 5",
         f"the model's report for a year ({what}): figures, DOCX and XLSX, best of 3"),
        ("report_year_figures", round(data_s, 2), "s", "-",
         "of which the figures (report_data: SQL aggregates)"),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"BENCH {row[0]} {row[1]} {row[2]}")
