"""Holds on the camera: time ranges whose footage retention must keep, durable.

A hold arrives as a command (a dissatisfied rating at the desk, or a
leader's request) and lives in a small SQLite file beside the footage, so it
survives restarts and outages. Retention asks :meth:`Holds.protects` for each
segment it considers: answered from memory, as it runs after every segment.
A hold ends when released or when it expires.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from wire.camera import HOLD_EXPIRED, HOLD_RELEASED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    expires REAL NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    segments INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
)
"""
#: Holds kept in memory and in the file at most; beyond it a new hold is refused
#: (the controller bounds holds far below this).
MAX_HOLDS = 5000
#: States in which a hold no longer protects anything.
ENDED = (HOLD_RELEASED, HOLD_EXPIRED)
_COLUMNS = ("id", "start", "end", "expires", "reason", "state", "segments", "bytes",
            "created", "updated")


class Holds:
    """The camera's holds, in ``path`` (SQLite, synchronous writes)."""

    def __init__(self, path: str | Path, *, clock: Any = time.time):
        self.clock = clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except Exception:
            self._db.close()
            raise
        self._lock = threading.Lock()
        self._active: dict[str, tuple[float, float, float]] = {}
        for row in self.all():
            if row["state"] not in ENDED:
                self._active[row["id"]] = (row["start"], row["end"], row["expires"])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Holds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, hold_id: str, start: float, end: float, expires: float,
            reason: str, state: str) -> tuple[dict[str, Any], bool]:
        """Keep [start, end) until ``expires``; returns (the hold, whether it is new). The
        same id again is the same hold (a command resent after an outage)."""
        with self._lock:
            existing = self._get(hold_id)
            if existing is not None:
                return existing, False
            if len(self._active) >= MAX_HOLDS:
                raise ValueError(f"{MAX_HOLDS} holds active: release some first")
            now = self.clock()
            self._db.execute(
                "INSERT INTO holds (id, start, \"end\", expires, reason, state, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (hold_id, start, end, expires, reason, state, now, now))
            self._active[hold_id] = (start, end, expires)
            return self._get(hold_id) or {}, True

    def update(self, hold_id: str, *, state: str, segments: int, size: int) -> bool:
        """Record what the hold covers now; True if anything changed."""
        with self._lock:
            row = self._get(hold_id)
            if row is None or (row["state"], row["segments"], row["bytes"]) == (
                    state, segments, size):
                return False
            self._db.execute("UPDATE holds SET state = ?, segments = ?, bytes = ?, updated = ?"
                             " WHERE id = ?", (state, segments, size, self.clock(), hold_id))
            if state in ENDED:
                self._active.pop(hold_id, None)
            return True

    def release(self, hold_id: str) -> dict[str, Any] | None:
        """The footage may go with retention again; None if no such hold."""
        with self._lock:
            if self._get(hold_id) is None:
                return None
            self._db.execute("UPDATE holds SET state = ?, updated = ? WHERE id = ?",
                             (HOLD_RELEASED, self.clock(), hold_id))
            self._active.pop(hold_id, None)
            return self._get(hold_id)

    def expired(self, now: float | None = None) -> list[str]:
        """Ids of active holds past their expiry (the caller marks them)."""
        now = self.clock() if now is None else now
        with self._lock:
            return [h for h, (_, _, expires) in self._active.items() if expires <= now]

    def protects(self, start: float, end: float, now: float | None = None) -> bool:
        """Whether footage of [start, end) is held (retention must keep it)."""
        now = self.clock() if now is None else now
        with self._lock:
            return any(s < end and start < e and expires > now
                       for s, e, expires in self._active.values())

    def get(self, hold_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._get(hold_id)

    def active(self) -> list[dict[str, Any]]:
        return [h for h in self.all() if h["state"] not in ENDED]

    def all(self) -> list[dict[str, Any]]:
        rows = self._db.execute(f"SELECT {', '.join(map(_quote, _COLUMNS))} FROM holds"
                                " ORDER BY start").fetchall()
        return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]

    def forget_ended(self, before: float) -> int:
        """Drop ended holds last changed before ``before`` (the file stays bounded)."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM holds WHERE state IN (?, ?) AND updated < ?",
                (*ENDED, before)).rowcount

    def _get(self, hold_id: str) -> dict[str, Any] | None:
        row = self._db.execute(f"SELECT {', '.join(map(_quote, _COLUMNS))} FROM holds"
                               " WHERE id = ?", (hold_id,)).fetchone()
        return dict(zip(_COLUMNS, row, strict=True)) if row else None


def _quote(column: str) -> str:
    return f'"{column}"'
