"""What the speaker has done, kept on disk: receipts owed, the item playing, local settings.

A receipt is written here first (``owed``), then emitted through the node's
durable outbox and marked sent, so a crash between the two re-sends the
same receipt rather than losing it. The item being played is noted with its
progress; if the node dies mid-playback, the note is found on restart and
turned into a ``cut_short`` receipt.
"""

from __future__ import annotations

import json
import pathlib
import threading
import time
from typing import Any

from node_runtime.storage import open_durable


class Ledger:
    """The speaker's own SQLite file; thread-safe."""

    def __init__(self, path: str | pathlib.Path):
        self._db = open_durable(path)
        self._lock = threading.Lock()
        with self._lock:
            for ddl in (
                "CREATE TABLE IF NOT EXISTS receipts (occurrence TEXT PRIMARY KEY,"
                " data TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0, created REAL)",
                "CREATE TABLE IF NOT EXISTS playing (id INTEGER PRIMARY KEY CHECK (id = 1),"
                " occurrence TEXT, data TEXT, started TEXT, progress_s REAL, updated TEXT)",
                "CREATE TABLE IF NOT EXISTS cancelled (key TEXT PRIMARY KEY)",
                "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT)",
            ):
                self._db.execute(ddl)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- receipts ---------------------------------------------------------------------

    def receipt_ids(self) -> set[str]:
        """The occurrences this node has a receipt for (sent or still owed)."""
        return {r[0] for r in self._q("SELECT occurrence FROM receipts")}

    def owe(self, data: dict[str, Any]) -> None:
        self._q("INSERT OR REPLACE INTO receipts (occurrence, data, sent, created)"
                " VALUES (?, ?, 0, ?)", (data["occurrence"], json.dumps(data), time.time()))

    def owed(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._q(
            "SELECT data FROM receipts WHERE sent = 0 ORDER BY created")]

    def sent(self, occurrence: str) -> None:
        self._q("UPDATE receipts SET sent = 1 WHERE occurrence = ?", (occurrence,))

    def forget_before(self, cutoff: float) -> None:
        self._q("DELETE FROM receipts WHERE sent = 1 AND created < ?", (cutoff,))

    # -- the item playing -------------------------------------------------------------

    def begin(self, occurrence: str, data: dict[str, Any], started: str) -> None:
        self._q("INSERT OR REPLACE INTO playing (id, occurrence, data, started, progress_s,"
                " updated) VALUES (1, ?, ?, ?, 0, ?)",
                (occurrence, json.dumps(data), started, started))

    def progress(self, progress_s: float, updated: str) -> None:
        self._q("UPDATE playing SET progress_s = ?, updated = ?", (progress_s, updated))

    def end(self) -> None:
        self._q("DELETE FROM playing")

    def interrupted(self) -> dict[str, Any] | None:
        """What was playing when the node last died, if anything."""
        rows = self._q("SELECT occurrence, data, started, progress_s, updated FROM playing")
        if not rows:
            return None
        occ, data, started, progress, updated = rows[0]
        return {**json.loads(data), "occurrence": occ, "started": started,
                "played_s": progress, "ended": updated}

    # -- cancellations and settings ---------------------------------------------------

    def cancel(self, key: str) -> None:
        self._q("INSERT OR IGNORE INTO cancelled (key) VALUES (?)", (key,))

    def is_cancelled(self, occurrence: str, broadcast: int) -> bool:
        return bool(self._q("SELECT 1 FROM cancelled WHERE key IN (?, ?)",
                            (occurrence, f"broadcast:{broadcast}")))

    def setting(self, key: str) -> Any:
        rows = self._q("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: Any) -> None:
        if value is None:
            self._q("DELETE FROM settings WHERE key = ?", (key,))
        else:
            self._q("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                    (key, json.dumps(value)))
