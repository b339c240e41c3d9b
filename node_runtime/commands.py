"""Commands from the controller: checked for expiry, run once, result reported.

A command carries a correlation id and an expiry. Past its expiry it is not
run and is reported ``expired``; a name with no handler is reported
``unknown``. Ids already handled are remembered in the node's database, so
a command the controller sends again after a reconnect is not run twice.
Handlers run one at a time on a worker thread, off the network thread.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from wire.errors import MessageError
from wire.messages import EVENT_COMMAND_RESULT, decode, parse_ts, utc_now
from wire.topics import Topic

log = logging.getLogger(__name__)

#: A handler gets the command's args and returns an optional result object.
CommandHandler = Callable[[dict[str, Any]], dict[str, Any] | None]
Report = Callable[[str, dict[str, Any]], object]  # (event type, data)

_SEEN_DAYS = 30


class CommandDispatcher:
    """Runs registered handlers for commands received on the device's topic."""

    def __init__(self, db: sqlite3.Connection, report: Report, lock: threading.Lock):
        self._db = db
        self._lock = lock
        self._report = report
        self._handlers: dict[str, CommandHandler] = {}
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        with self._lock:
            db.execute(
                "CREATE TABLE IF NOT EXISTS seen_commands (id TEXT PRIMARY KEY, received REAL)"
            )
            db.execute("DELETE FROM seen_commands WHERE received < ?",
                       (time.time() - _SEEN_DAYS * 86400,))
        self._thread = threading.Thread(target=self._run, name="commands", daemon=True)

    def register(self, name: str, handler: CommandHandler) -> None:
        self._handlers[name] = handler

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    def start(self) -> None:
        self._thread.start()

    def receive(self, topic: str, payload: bytes) -> None:
        """Network-thread entry: validate, then queue for the worker."""
        try:
            command = decode(Topic.COMMANDS, payload)
        except MessageError as exc:
            log.warning("rejected command on %s: %s", topic, exc)
            return
        self._queue.put(command)

    def _run(self) -> None:
        while (command := self._queue.get()) is not None:
            try:
                self._handle(command)
            except Exception:
                log.exception("command %s failed to report", command.get("id"))

    def _handle(self, command: dict[str, Any]) -> None:
        command_id, name = command["id"], command["name"]
        with self._lock:
            fresh = self._db.execute(
                "INSERT OR IGNORE INTO seen_commands (id, received) VALUES (?, ?)",
                (command_id, time.time()),
            ).rowcount
        if not fresh:
            log.info("command %s already handled; ignoring the resend", command_id)
            return
        if parse_ts(command["expires"]) <= utc_now():
            self._result(command_id, name, "expired", f"expired at {command['expires']}")
            return
        handler = self._handlers.get(name)
        if handler is None:
            self._result(command_id, name, "unknown",
                         f"unknown command {name!r}; this device knows {self.names}")
            return
        log.info("running command %s (%s)", name, command_id)
        try:
            result = handler(command["args"])
        except Exception as exc:
            log.warning("command %s failed: %s", name, exc)
            self._result(command_id, name, "failed", f"{type(exc).__name__}: {exc}")
            return
        self._result(command_id, name, "done", None, result)

    def _result(self, command_id: str, name: str, status: str, reason: str | None,
                result: dict[str, Any] | None = None) -> None:
        data: dict[str, Any] = {"command_id": command_id, "name": name, "status": status}
        if reason:
            data["reason"] = reason
        if result:
            data["result"] = result
        self._report(EVENT_COMMAND_RESULT, data)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)
