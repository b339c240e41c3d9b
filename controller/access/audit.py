"""The audit log: every state-changing request, who made it and what came of it.

Append-only: triggers refuse UPDATE, and DELETE of any entry younger than its
retention. Entries of people (signed in or by token) are kept
:data:`RETENTION_DAYS`; anonymous ones (refused before anyone was known: a
wrong token, no token, a failed sign-in) :data:`ANONYMOUS_RETENTION_DAYS`,
and at most :data:`ANONYMOUS_PER_MINUTE` a minute from one address are
written (the rest are counted), so no one on the LAN can fill the disk
through the log. Written through the single writer, after the answer, so
recording never delays a request.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import sqlite_utils

_FIELDS = ("id", "at", "user", "role", "method", "path", "status", "address")

#: Days entries are kept (the triggers in controller.db.schema.access say the same).
RETENTION_DAYS = 730
ANONYMOUS_RETENTION_DAYS = 90
#: Anonymous entries written per address per minute; beyond, counted only.
ANONYMOUS_PER_MINUTE = 60
_ADDRESSES = 10_000  # addresses counted per minute; beyond, every anonymous entry waits


class AnonymousBudget:
    """``allow(address)``: may one more anonymous entry from ``address`` be written in
    this minute? Memory is bounded: the counts are forgotten every minute."""

    def __init__(self, per_minute: int = ANONYMOUS_PER_MINUTE, *,
                 clock: Any = time.monotonic):
        self.per_minute, self._clock = per_minute, clock
        self._lock = threading.Lock()
        self._minute = -1
        self._counts: collections.Counter[str] = collections.Counter()

    def allow(self, address: str | None) -> bool:
        minute = int(self._clock() // 60)
        key = address or "-"
        with self._lock:
            if minute != self._minute:
                self._minute, self._counts = minute, collections.Counter()
            if key not in self._counts and len(self._counts) >= _ADDRESSES:
                return False
            self._counts[key] += 1
            return self._counts[key] <= self.per_minute


def prune(db: sqlite_utils.Database, now: float | None = None) -> int:
    """Writer task: delete the entries past their retention; how many."""
    now = time.time() if now is None else now
    return db.execute(
        "DELETE FROM audit_log WHERE (user IS NULL AND at < ?) OR at < ?",
        (now - ANONYMOUS_RETENTION_DAYS * 86400, now - RETENTION_DAYS * 86400)).rowcount


def record(db: sqlite_utils.Database, entry: dict[str, Any]) -> None:
    """Writer task: add one entry (method, path, status, user, role, address)."""
    db.execute("INSERT INTO audit_log (at, user, role, method, path, status, address)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)",
               (entry.get("at", time.time()), entry.get("user"), entry.get("role"),
                entry["method"], entry["path"], entry["status"], entry.get("address")))


def list_entries(db: sqlite_utils.Database, *, user: str | None = None,
                 since: float | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Entries newest first, optionally by one user or since a time (Unix seconds)."""
    sql = f"SELECT {', '.join(_FIELDS)} FROM audit_log WHERE 1"
    params: list[Any] = []
    if user:
        sql, params = sql + " AND user = ?", [*params, user]
    if since is not None:
        sql, params = sql + " AND at >= ?", [*params, since]
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    return [dict(zip(_FIELDS, r, strict=True)) for r in rows]
