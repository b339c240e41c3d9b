"""Desired configuration per device: versioned, retained on the broker.

The controller keeps the desired config and its version; the device applies
it (without restart where it can) and reports the version it runs, in its
birth and in ``config_applied`` events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t
from wire.messages import MAX_PAYLOAD_BYTES

log = logging.getLogger(__name__)

PublishConfig = Callable[[str, int, dict[str, Any]], None]


class DesiredConfig:
    """Sets and publishes each device's desired config."""

    def __init__(self, writer: Writer, publish: PublishConfig):
        self.writer = writer
        self._publish = publish
        #: device -> (desired version last republished, when, the wait before the next)
        self._resent: dict[str, tuple[int, float, float]] = {}

    def republish_all(self) -> None:
        """Publish every device's desired config again (retained), without waiting: on the
        controller's every (re)connect to the broker, whose retained copies may be older
        than the database's (a broker killed before its autosave)."""
        def task(db: sqlite_utils.Database) -> None:
            rows = db.execute("SELECT id, desired_config_version, desired_config FROM devices"
                              " WHERE status = 'approved' AND desired_config_version > 0"
                              ).fetchall()
            for device, version, text in rows:
                self._publish(device, version, json.loads(text) if text else {})
        self.writer.submit(task)

    def resync(self, now: float | None = None) -> list[str]:
        """Publish again the desired config of every online device that reports another
        version for 30 s: the retained copy may be gone or stale (a broker restarted before
        it saved, a node restarted with an empty database). A device that keeps reporting
        another version is asked again after 60 s, then twice as long each time, up to an
        hour (a config it refuses is not sent nonstop). Returns the devices sent to."""
        now = time.monotonic() if now is None else now
        rows = self.writer.call(_behind)
        behind = {r[0] for r in rows}
        for device in list(self._resent):
            if device not in behind:
                del self._resent[device]
        sent = []
        for device, version, text in rows:
            last = self._resent.get(device)
            if last is None or last[0] != version:  # seen behind now: give it 30 s first
                self._resent[device] = (version, now, 30.0)
                continue
            if now - last[1] < last[2]:
                continue
            self._resent[device] = (version, now, min(last[2] * 2, 3600.0))
            self._publish(device, version, json.loads(text) if text else {})
            sent.append(device)
        if sent:
            log.info("desired config published again to %s (they report another version)",
                     ", ".join(sent[:20]))
        return sent

    def set(self, device_id: str, config: Any) -> int:
        """Store a new version of the device's desired config and publish it; return it."""
        version: int = self.writer.call(self._task(device_id, config))
        self._publish(device_id, version, config)
        return version

    def _task(self, device_id: str, config: dict[str, Any]) -> Any:
        """The writer task storing the next version of ``device_id``'s config."""
        if not isinstance(config, dict):
            raise InvalidRequest(_t("config must be a JSON object, not {type}"),
                                 type=type(config).__name__)
        try:
            text = json.dumps(config, ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise InvalidRequest(_t("config holds NaN or Infinity, which JSON has not")) from None
        if len(text.encode()) > MAX_PAYLOAD_BYTES - 100:
            raise InvalidRequest(_t("config is {size} bytes: over the message limit"),
                                 size=len(text.encode()))

        def task(db: sqlite_utils.Database) -> int:
            row = db.execute("SELECT desired_config_version FROM devices WHERE id = ?",
                             (device_id,)).fetchone()
            if row is None:
                raise NotFound(_t("no device {id!r}"), id=device_id)
            version = row[0] + 1
            db.execute("UPDATE devices SET desired_config = ?, desired_config_version = ?"
                       " WHERE id = ?", (text, version, device_id))
            return version

        return task

    def patch(self, device_id: str, patch: Any) -> tuple[int, dict[str, Any]]:
        """Apply a JSON merge patch (RFC 7396, :func:`merge`) to the device's desired config,
        read and written in one writer task (a roster push meanwhile is not lost); publish
        the result. Returns (version, config)."""
        if not isinstance(patch, dict):
            raise InvalidRequest(_t("patch must be a JSON object, not {type}"),
                                 type=type(patch).__name__)
        box: dict[str, Any] = {}

        def task(db: sqlite_utils.Database) -> int:
            merged = merge(get_desired(db, device_id)["config"], patch)
            box["config"] = merged
            return int(self._task(device_id, merged)(db))

        version: int = self.writer.call(task)
        self._publish(device_id, version, box["config"])
        return version, box["config"]

    def set_many(self, configs: dict[str, dict[str, Any]]) -> dict[str, int]:
        """:meth:`set` for many devices at once: one group commit, then the publishes."""
        futures = {device: self.writer.submit(self._task(device, config))
                   for device, config in configs.items()}
        versions = {device: int(f.result(30)) for device, f in futures.items()}
        for device, version in versions.items():
            self._publish(device, version, configs[device])
        return versions


def _behind(db: sqlite_utils.Database) -> list[tuple[str, int, str | None]]:
    """Writer task: online devices whose reported config version is not the desired one.
    One that runs a *newer* version than desired (the controller's database restored from
    an older backup) gets its desired version moved past it: a node never goes back."""
    db.execute("UPDATE devices SET desired_config_version = reported_config_version + 1"
               " WHERE status = 'approved' AND online = 1 AND desired_config_version > 0"
               " AND reported_config_version > desired_config_version")
    return db.execute(
        "SELECT id, desired_config_version, desired_config FROM devices"
        " WHERE status = 'approved' AND online = 1 AND desired_config_version > 0"
        " AND (reported_config_version IS NULL"
        " OR reported_config_version != desired_config_version)").fetchall()


def merge(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7396): a key set to
    null is removed, objects are merged recursively, anything else replaces. Neither
    argument is changed."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def diff(before: Any, after: Any) -> dict[str, Any]:
    """The merge patch turning the object ``before`` into the object ``after`` (only what
    changed: removed keys as null); ``merge(before, diff(before, after)) == after`` when
    ``after`` holds no null values."""
    before = before if isinstance(before, dict) else {}
    out: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            inner = diff(old, value)
            if inner:
                out[key] = inner
        elif key not in before or old != value or type(old) is not type(value):
            out[key] = value
    return out


def get_desired(db: sqlite_utils.Database, device_id: str) -> dict[str, Any]:
    row = db.execute("SELECT desired_config_version, desired_config, reported_config_version"
                     " FROM devices WHERE id = ?", (device_id,)).fetchone()
    if row is None:
        raise NotFound(_t("no device {id!r}"), id=device_id)
    return {"version": row[0], "config": json.loads(row[1]) if row[1] else {},
            "reported_version": row[2]}


def store_applied(db: sqlite_utils.Database, event: dict[str, Any]) -> None:
    """Ingest handler for ``config_applied`` events: note the version the device runs."""
    running = event["data"].get("running_version")
    if not isinstance(running, int):
        raise ValueError(f"config_applied running_version {running!r}: expected an integer")
    db.execute("UPDATE devices SET reported_config_version = ? WHERE id = ?",
               (running, event["device"]))
