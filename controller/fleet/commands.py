"""Commands to devices: stored, sent (never retained), resent on reconnect, expired.

A command has a correlation id and an expiry. It is published when created
if the device is online, and again whenever the device is born (the device
ignores ids it has already handled). One that gets no result before its
expiry is marked ``expired``; results arrive as durable ``command_result``
events.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t
from wire.messages import COMMAND_STATUSES, format_ts, utc_now

log = logging.getLogger(__name__)

PublishCommand = Callable[[str, dict[str, Any]], bool]  # (device, body) -> sent
MAX_TTL_S = 7 * 86400


class Commands:
    """Creates commands and tracks them to a result."""

    def __init__(self, writer: Writer, publish: PublishCommand):
        self.writer = writer
        self._publish = publish

    def create(self, device_id: str, name: str, args: dict[str, Any] | None = None,
               ttl_s: float = 300) -> dict[str, Any]:
        if not isinstance(name, str) or not name:
            raise InvalidRequest(_t("command needs a non-empty 'name'"))
        if args is not None and not isinstance(args, dict):
            raise InvalidRequest(_t("command 'args' must be an object, not {type}"),
                                 type=type(args).__name__)
        if not isinstance(ttl_s, int | float) or isinstance(ttl_s, bool) or not (
                0 < ttl_s <= MAX_TTL_S):
            raise InvalidRequest(_t("command 'ttl_s' {ttl_s!r}: expected 0 < ttl_s <= {most}"),
                                 ttl_s=ttl_s, most=MAX_TTL_S)
        body: dict[str, Any] = {"id": str(uuid.uuid4()), "name": name, "args": args or {},
                "expires": format_ts(utc_now() + dt.timedelta(seconds=ttl_s))}

        def task(db: sqlite_utils.Database) -> None:
            if db.execute("SELECT status FROM devices WHERE id = ?",
                          (device_id,)).fetchone() is None:
                raise NotFound(_t("no device {id!r}"), id=device_id)
            _insert(db, device_id, body)

        self.writer.call(task)
        self.send(device_id, body)
        return {**body, "device": device_id, "status": "pending"}

    def add(self, db: sqlite_utils.Database, device_id: str, name: str,
            args: dict[str, Any], ttl_s: float = 300) -> dict[str, Any]:
        """In the writer thread, inside the caller's transaction (a rating hook's, an
        ingest handler's): store a pending command and return its body. The caller hands
        the body to :meth:`send` once the transaction committed; until then (or if it
        never is) nothing is published."""
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()), "name": name, "args": args,
            "expires": format_ts(utc_now() + dt.timedelta(seconds=min(ttl_s, MAX_TTL_S)))}
        _insert(db, device_id, body)
        return body

    def send(self, device_id: str, body: dict[str, Any]) -> None:
        """Publish a stored command now; a device offline gets it again at its birth."""
        if self._publish(device_id, body):
            self._mark_sent([body["id"]])

    def resend_open(self, device_id: str) -> None:
        """The device was born: send its open, unexpired commands again."""
        now = format_ts(utc_now())

        def task(db: sqlite_utils.Database) -> list[tuple[str, str, str, str]]:
            return db.execute(
                "SELECT id, name, args, expires FROM commands WHERE device = ? AND status IN"
                " ('pending', 'sent') AND expires > ? ORDER BY created", (device_id, now)
            ).fetchall()

        def send(future: Any) -> None:
            sent = [cid for cid, name, args, expires in future.result()
                    if self._publish(device_id, {"id": cid, "name": name,
                                                 "args": json.loads(args), "expires": expires})]
            if sent:
                self._mark_sent(sent)

        self.writer.submit(task).add_done_callback(send)

    def _mark_sent(self, ids: list[str]) -> None:
        def task(db: sqlite_utils.Database) -> None:
            for cid in ids:
                db.execute("UPDATE commands SET status = 'sent', updated = ? WHERE id = ?"
                           " AND status = 'pending'", (time.time(), cid))
        self.writer.submit(task)

    def expire(self) -> int:
        """Mark open commands past their expiry ``expired``; return how many."""
        now = format_ts(utc_now())
        return self.writer.call(lambda db: db.execute(
            "UPDATE commands SET status = 'expired', reason = 'no result before expiry',"
            " updated = ? WHERE status IN ('pending', 'sent') AND expires <= ?",
            (time.time(), now)).rowcount)


def _insert(db: sqlite_utils.Database, device_id: str, body: dict[str, Any]) -> None:
    now = time.time()
    db.execute(
        "INSERT INTO commands (id, device, name, args, created, expires, status, updated)"
        " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
        (body["id"], device_id, body["name"], json.dumps(body["args"]), now, body["expires"],
         now))


def store_result(db: sqlite_utils.Database, event: dict[str, Any]) -> None:
    """Ingest handler for ``command_result`` events."""
    data = event["data"]
    status = data.get("status")
    if status not in COMMAND_STATUSES:
        raise ValueError(f"command result status {status!r}: expected one of {COMMAND_STATUSES}")
    updated = db.execute(
        "UPDATE commands SET status = ?, reason = ?, result = ?, updated = ?"
        " WHERE id = ? AND device = ?",
        (status, data.get("reason"), json.dumps(data.get("result")), time.time(),
         data.get("command_id"), event["device"]),
    ).rowcount
    if not updated:
        raise ValueError(f"result for unknown command {data.get('command_id')!r}")


_COLUMNS = "id, device, name, args, created, expires, status, reason, result"


def _command_row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "device": r[1], "name": r[2], "args": json.loads(r[3]),
            "created": r[4], "expires": r[5], "status": r[6], "reason": r[7],
            "result": json.loads(r[8]) if r[8] else None}


def list_commands(db: sqlite_utils.Database, device_id: str,
                  limit: int = 100) -> list[dict[str, Any]]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM commands WHERE device = ?"
                      " ORDER BY created DESC LIMIT ?", (device_id, limit)).fetchall()
    return [_command_row(r) for r in rows]


def get_command(db: sqlite_utils.Database, command_id: str) -> dict[str, Any]:
    row = db.execute(f"SELECT {_COLUMNS} FROM commands WHERE id = ?", (command_id,)).fetchone()
    if row is None:
        raise NotFound(_t("no command {id!r}"), id=command_id)
    return _command_row(row)
