"""Idempotent ingestion of device events, acknowledged only after commit.

An event id is stored once: a duplicate (a node resending after a lost ack)
is acknowledged again and not stored twice. Type handlers (ratings, command
results...) run inside the same transaction as the event row; if a handler
refuses the event's data, the event is still kept and acked (it was accepted
by the device and must not be lost or resent forever) and the refusal is
counted.

An event whose data a handler cannot process (any error but the database's
own) is kept, acknowledged, counted, and set aside in ``quarantine`` with the
reason, for a technician to look at; it never holds up other events.

Handlers run without a savepoint each: a savepoint per event makes SQLite
copy every page the event touches into a statement journal, a sixth of the
ingestion rate. A batch is stored optimistically inside one savepoint; if a
handler refuses an event, that batch is undone and stored again with each
handler in its own savepoint, so only the refused event's handler writes
are dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.fleet.metrics import Metrics
from wire.messages import EVENT_ROLES, json_text

log = logging.getLogger(__name__)

TypeHandler = Callable[[sqlite_utils.Database, dict[str, Any]], None]
PublishAck = Callable[[str, list[str]], None]


class _Refused(Exception):
    """A handler refused an event's data on the optimistic pass."""


class Ingestor:
    """Stores events through the writer and publishes acks per batch."""

    def __init__(self, writer: Writer, publish_ack: PublishAck, metrics: Metrics, *,
                 role_of: Callable[[str], str | None] = lambda device: None):
        self.writer = writer
        self.metrics = metrics
        self._publish_ack = publish_ack
        self._role_of = role_of
        self._handlers: dict[str, TypeHandler] = {}
        self._acks: defaultdict[str, list[str]] = defaultdict(list)  # writer thread only
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._scheduled = False
        #: Called after each commit with the (device, seq, type) of the events it stored.
        self.stored_hooks: list[Callable[[list[tuple[str, int, str]]], None]] = []
        self._stored: list[tuple[str, int, str]] = []  # writer thread only
        writer.batch_hooks.append(self._flush)

    def register(self, type_: str, handler: TypeHandler) -> None:
        """Also run ``handler(db, event)`` for each new event of ``type_``."""
        self._handlers[type_] = handler

    def accept(self, event: dict[str, Any]) -> None:
        """Queue a validated event from an approved device.

        Events wait in one list that a single writer task stores, so a burst
        costs one task (one savepoint) rather than one per event.
        """
        with self._lock:
            self._pending.append(event)
            if self._scheduled:
                return
            self._scheduled = True
        self.writer.submit(self._store_pending)

    def _store_pending(self, db: sqlite_utils.Database) -> None:
        with self._lock:
            events, self._pending = self._pending, []
            self._scheduled = False
        db.execute("SAVEPOINT ingest")
        try:
            stored = [self._store(db, event, careful=False) for event in events]
        except _Refused:
            db.execute("ROLLBACK TO ingest")
            stored = [self._store(db, event, careful=True) for event in events]
        db.execute("RELEASE ingest")
        fresh = sum(stored)
        self.metrics.count("events_stored", fresh)
        self.metrics.count("events_duplicate", len(events) - fresh)
        # Only now, with every event stored (or the whole task rolled back by
        # an exception above), may their acks wait for the commit.
        for event, new in zip(events, stored, strict=True):
            self._acks[event["device"]].append(event["id"])
            if new:
                self._stored.append((event["device"], event["seq"], event["type"]))

    def _store(self, db: sqlite_utils.Database, event: dict[str, Any], *, careful: bool) -> bool:
        """Store ``event`` and run its type's handler; False if it was a duplicate.

        Not ``careful``, a handler's refusal raises :class:`_Refused`; ``careful``,
        it is rolled back alone, logged and counted."""
        cursor = db.execute(
            "INSERT OR IGNORE INTO events (id, device, seq, type, ts, clock_synced, received, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event["id"], event["device"], event["seq"], event["type"], event["ts"],
             int(event["clock_synced"]), time.time(),
             json_text(event["data"])),
        )
        if not cursor.rowcount:
            return False
        handler = self._handlers.get(event["type"])
        if handler is None:
            return True
        handler = self._for_role(handler, event)
        if careful:
            self._run_handler(db, handler, event)
        else:
            try:
                handler(db, event)
            except Exception as exc:
                if _storage_failure(exc):
                    raise
                raise _Refused() from exc
        return True

    def _for_role(self, handler: TypeHandler, event: dict[str, Any]) -> TypeHandler:
        """The handler, or one that refuses the event if its device's role may not file
        that type (a speaker sending ratings)."""
        allowed = EVENT_ROLES.get(event["type"])
        role = self._role_of(event["device"])
        if allowed is None or role is None or role in allowed:
            return handler

        def refuse(db: sqlite_utils.Database, event: dict[str, Any]) -> None:
            raise ValueError(f"a {role} may not file {event['type']} events "
                             f"(only {', '.join(allowed)})")
        return refuse

    def _run_handler(self, db: sqlite_utils.Database, handler: TypeHandler,
                     event: dict[str, Any]) -> None:
        db.execute("SAVEPOINT handler")
        try:
            handler(db, event)
        except Exception as exc:
            if _storage_failure(exc):
                raise
            db.execute("ROLLBACK TO handler")
            reason = f"{type(exc).__name__}: {exc}"[:500]
            detail = f"{event['type']} event {event['id']} from {event['device']}: {reason}"
            log.warning("kept but could not process %s", detail)
            self.metrics.reject("event_data", event["device"], detail)
            db.execute("INSERT OR REPLACE INTO quarantine (event_id, device, type, reason,"
                       " quarantined) VALUES (?, ?, ?, ?, ?)",
                       (event["id"], event["device"], event["type"], reason, time.time()))
        db.execute("RELEASE handler")

    def _flush(self, committed: bool) -> None:
        acks, self._acks = self._acks, defaultdict(list)
        stored, self._stored = self._stored, []
        if not committed:
            return  # the nodes will send these again
        for hook in self.stored_hooks:
            hook(stored)
        for device, ids in acks.items():
            for start in range(0, len(ids), 1000):
                self._publish_ack(device, ids[start:start + 1000])


def _storage_failure(exc: Exception) -> bool:
    """The database itself failed (disk full, I/O): the whole batch must fail and be
    sent again, not the event be set aside. Any other error is the event's data."""
    return isinstance(exc, sqlite3.OperationalError)


def list_quarantine(db: sqlite_utils.Database, limit: int = 100) -> list[dict[str, Any]]:
    """Events kept but not processed, newest first, with the reason."""
    rows = db.execute("SELECT q.event_id, q.device, q.type, q.reason, q.quarantined, e.data"
                      " FROM quarantine q LEFT JOIN events e ON e.id = q.event_id"
                      " ORDER BY q.quarantined DESC LIMIT ?", (limit,)).fetchall()
    return [{"event_id": r[0], "device": r[1], "type": r[2], "reason": r[3],
             "quarantined": r[4], "data": r[5]} for r in rows]
