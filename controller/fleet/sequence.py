"""Each device's event sequence numbers: gaps (events a device numbered but that never
arrived) and resets (a device numbering from 1 again: a node database set aside as
corrupt, new hardware for an id, a card re-imaged) are found and kept for technicians.

A node numbers its events 1, 2, 3... for as long as its database lives, and
sends them in order with up to ``outbox_window`` in flight, so one may arrive
after a later one. After each committed batch the new events' seqs are compared
with the highest seen per device (kept in memory, from ``events`` at start):

- a jump past ``high + 1`` opens a *pending* gap; the sweep checks ``events``
  after :data:`GAP_GRACE_S` and keeps the gap (with how many are missing) only if
  some never came;
- a seq back at 1, an explicit ``storage_reset`` event, or a drop of more than
  :data:`RESET_DROP` below the highest is a *reset*, recorded at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from wire.messages import EVENT_STORAGE_RESET

GAP_GRACE_S = 600.0
RESET_DROP = 1000
KEEP_S = 400 * 86400  # anomalies are kept a year and a bit


class Sequences:
    def __init__(self, writer: Writer):
        self.writer = writer
        self._lock = threading.Lock()
        rows = writer.db.execute("SELECT device, max(seq) FROM events GROUP BY device").fetchall()
        self._high: dict[str, int] = {r[0]: r[1] for r in rows}

    def observe(self, stored: list[tuple[str, int, str]]) -> None:
        """After a commit: the (device, seq, type) of the events it stored."""
        found: list[tuple[str, str, int, int, str | None]] = []
        with self._lock:
            for device, seq, type_ in stored:
                high = self._high.get(device)
                if high is None:
                    self._high[device] = seq
                    if seq > 1:  # not its first event: a device registered mid-life
                        continue
                elif type_ == EVENT_STORAGE_RESET or (seq == 1 and high > 1) or \
                        seq < high - RESET_DROP:
                    found.append((device, "reset", seq, high, "storage_reset event"
                                  if type_ == EVENT_STORAGE_RESET else None))
                    self._high[device] = seq
                elif seq > high + 1:
                    found.append((device, "pending", high + 1, seq - 1, None))
                    self._high[device] = seq
                elif seq > high:
                    self._high[device] = seq
        if found:
            self.writer.submit(lambda db: _record(db, found))

    def sweep(self, now: float | None = None) -> None:
        """Confirm or drop pending gaps older than the grace; prune old anomalies."""
        now = time.time() if now is None else now
        self.writer.submit(lambda db: _sweep(db, now))


def _record(db: sqlite_utils.Database, found: list[tuple[str, str, int, int, str | None]]
            ) -> None:
    now = time.time()
    for device, kind, first, last, detail in found:
        db.execute("INSERT INTO sequence_anomalies (device, kind, first_seq, last_seq,"
                   " detected, detail) VALUES (?, ?, ?, ?, ?, ?)",
                   (device, kind, first, last, now, detail))


def _sweep(db: sqlite_utils.Database, now: float) -> None:
    rows = db.execute("SELECT id, device, first_seq, last_seq FROM sequence_anomalies"
                      " WHERE kind = 'pending' AND detected < ?",
                      (now - GAP_GRACE_S,)).fetchall()
    for row_id, device, first, last in rows:
        came = db.execute("SELECT count(DISTINCT seq) FROM events WHERE device = ? AND seq"
                          " BETWEEN ? AND ?", (device, first, last)).fetchone()[0]
        missing = last - first + 1 - came
        if missing <= 0:
            db.execute("DELETE FROM sequence_anomalies WHERE id = ?", (row_id,))
        else:
            db.execute("UPDATE sequence_anomalies SET kind = 'gap', missing = ? WHERE id = ?",
                       (missing, row_id))
    db.execute("DELETE FROM sequence_anomalies WHERE detected < ?", (now - KEEP_S,))


def anomalies(db: sqlite_utils.Database, device: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
    """Confirmed gaps and resets, newest first (pending gaps are not shown)."""
    sql = ("SELECT device, kind, first_seq, last_seq, missing, detected, detail"
           " FROM sequence_anomalies WHERE kind != 'pending'")
    params: tuple[Any, ...] = ()
    if device:
        sql += " AND device = ?"
        params = (device,)
    rows = db.execute(sql + " ORDER BY detected DESC LIMIT ?", (*params, limit)).fetchall()
    keys = ("device", "kind", "first_seq", "last_seq", "missing", "detected", "detail")
    return [dict(zip(keys, r, strict=True)) for r in rows]
