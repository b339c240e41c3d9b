"""The audit log: every state-changing request, who made it and what came of it.

Append-only (triggers refuse UPDATE and DELETE). Written through the single
writer, after the answer, so recording never delays a request.
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

_FIELDS = ("id", "at", "user", "role", "method", "path", "status", "address")


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
