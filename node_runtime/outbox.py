"""The durable outbox: events a node accepted, kept until the controller acks them.

``put`` returns only after the event is committed and fsync'd, so an event
the device accepted survives a crash or a power cut. Events are numbered
with a per-device sequence that never goes back, even after a restart.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from node_runtime.storage import open_durable
from wire.messages import encode, new_event
from wire.topics import Topic

log = logging.getLogger(__name__)


class Outbox:
    """Events waiting for the controller's acknowledgement, oldest first."""

    def __init__(
        self, path: str | pathlib.Path, device_id: str, *,
        clock_synced: Callable[[], bool] = lambda: False,
    ):
        self.device_id = device_id
        self._clock_synced = clock_synced
        self._lock = threading.Lock()
        self._db = open_durable(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
            " type TEXT NOT NULL, payload TEXT NOT NULL, created REAL NOT NULL)"
        )
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        self._next_seq = (row[0] if row else 0) + 1
        self._depth = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        self._listeners: list[Callable[[], None]] = []

    def put(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """Accept an event durably and return its body (with ``id`` and ``seq``).

        Raises :class:`wire.MessageError` (nothing stored) if the event is not valid.
        """
        with self._lock:
            event = new_event(
                self.device_id, self._next_seq, type_, data, clock_synced=self._clock_synced()
            )
            self._db.execute(
                "INSERT INTO outbox (seq, id, type, payload, created) VALUES (?, ?, ?, ?, ?)",
                (event["seq"], event["id"], type_, encode(Topic.EVENTS, event), time.time()),
            )
            self._next_seq += 1
            self._depth += 1
        for listener in self._listeners:
            listener()
        return event

    def put_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Accept several events in one transaction (one fsync)."""
        with self._lock:
            events = []
            synced = self._clock_synced()
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for type_, data in items:
                    event = new_event(self.device_id, self._next_seq, type_, data,
                                      clock_synced=synced)
                    self._db.execute(
                        "INSERT INTO outbox (seq, id, type, payload, created)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (event["seq"], event["id"], type_, encode(Topic.EVENTS, event),
                         time.time()),
                    )
                    self._next_seq += 1
                    events.append(event)
            self._depth += len(events)
        for listener in self._listeners:
            listener()
        return events

    def after(self, seq: int, limit: int) -> list[tuple[int, str, bytes]]:
        """Up to ``limit`` waiting events with a sequence above ``seq``: ``(seq, id, payload)``."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, id, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()

    def remove(self, ids: list[str]) -> int:
        """Forget acknowledged events; unknown ids (already removed) are ignored.

        The delete is not fsync'd (``synchronous=NORMAL`` for this one
        transaction): if a power cut undoes it, the events are sent again and
        the controller, which stores an id once, acknowledges them again.
        The next durable ``put`` fsyncs it anyway.
        """
        if not ids:
            return 0
        with self._lock:
            removed = 0
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                removed = self._delete(ids)
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            self._depth -= removed
            return removed

    def _delete(self, ids: list[str]) -> int:
        removed = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                cursor = self._db.execute(
                    f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(chunk))})", chunk)
                removed += cursor.rowcount
        return removed

    @property
    def depth(self) -> int:
        """How many events wait for an acknowledgement."""
        return self._depth

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quickly, no arguments) after each accepted event."""
        self._listeners.append(callback)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
