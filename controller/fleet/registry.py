"""The device registry: who may talk to the controller, who is online, their health.

Only approved devices have their events stored and acked. A device that
connects with valid broker credentials but is not in the registry is listed
as ``pending`` until a technician approves it.

Online state comes from the retained birth and will, and from liveness kept
here: a node sends telemetry at least every keepalive / 2, so a device
silent for 1.25 x its keepalive is marked offline by :meth:`Registry.sweep`.
The broker's own will comes later than that (Mosquitto 2.0 checks
keepalives only every few seconds), and the sweep also covers a stale
retained birth after a broker restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t
from controller.fleet import presence
from wire.errors import TopicError
from wire.topics import check_device_id

log = logging.getLogger(__name__)

TELEMETRY_HISTORY = 2880  # rows kept per device: a day at one per 30 s keepalive
DEFAULT_KEEPALIVE = 60
#: Nodes send telemetry at least every keepalive / 2; after 1.25 x keepalive of
#: silence (two heartbeats missed) a device is offline, so a dead link is seen
#: within 1.25 x keepalive of its last message: inside the 1.5 x asked for.
SILENCE = 1.25
ROLES = ("kiosk", "speaker", "camera", "sim")


class Registry:
    """Device records; writes go through the :class:`Writer`."""

    def __init__(self, writer: Writer):
        self.writer = writer
        self._lock = threading.Lock()
        rows = writer.db.execute(
            "SELECT id, status, online, last_seen, keepalive FROM devices").fetchall()
        self._status: dict[str, str] = {row[0]: row[1] for row in rows}
        #: Seconds of silence allowed per device.
        self._limits = {row[0]: SILENCE * (row[4] or DEFAULT_KEEPALIVE) for row in rows}
        #: Online devices: id -> last heard.
        self._liveness: dict[str, float] = {row[0]: row[3] or 0.0 for row in rows if row[2]}
        self._looked_up: dict[str, float] = {}
        #: Each device's role, for the ingestor's check of who may file what.
        self._roles: dict[str, str | None] = {
            r[0]: r[1] for r in writer.db.execute("SELECT id, role FROM devices").fetchall()}
        self._telemetry_count = 0
        writer.submit(presence.reconcile)  # first in the queue, before any device speaks

    # -- questions asked on the hot path (no database access) ------------------------

    def is_approved(self, device_id: str) -> bool:
        """From memory; a device not approved there is looked up again at most every 5 s,
        so one approved by another process (the CLI) is accepted without a restart."""
        if self._status.get(device_id) == "approved":
            return True
        now = time.monotonic()
        if now - self._looked_up.get(device_id, -1e9) < 5:
            return False
        self._looked_up[device_id] = now
        row = self.writer.call(lambda db: db.execute(
            "SELECT status FROM devices WHERE id = ?", (device_id,)).fetchone())
        if row is not None:
            with self._lock:
                self._status[device_id] = row[0]
        return row is not None and row[0] == "approved"

    def role_of(self, device_id: str) -> str | None:
        """The device's role, from memory (the hot path of ingestion)."""
        return self._roles.get(device_id)

    def heard(self, device_id: str) -> None:
        """Anything from the device proves it alive, and back online if the sweep had
        given up on it while its connection survived (a link that froze and recovered)."""
        if device_id in self._liveness:
            self._liveness[device_id] = time.time()
            return
        if device_id not in self._limits:
            return  # never born: it is not online until its birth
        now = time.time()

        def task(db: sqlite_utils.Database) -> None:
            db.execute("UPDATE devices SET online = 1 WHERE id = ?", (device_id,))
            presence.opened(db, device_id, now)

        with self._lock:
            self._liveness[device_id] = now
            self.writer.submit(task)
        log.info("device %s heard from again: online", device_id)

    # -- technician actions ----------------------------------------------------------

    def add(self, device_id: str, role: str, *, label: str | None = None,
            hamlet: str | None = None) -> dict[str, Any]:
        """Register (or approve) a device so its events are accepted."""
        try:
            check_device_id(device_id)
        except TopicError as exc:
            raise InvalidRequest(str(exc)) from None
        if role not in ROLES:
            raise InvalidRequest(_t("unknown role {role!r}: expected one of {roles}"), role=role,
                                 roles=ROLES)

        def task(db: sqlite_utils.Database) -> None:
            now = time.time()
            db.execute(
                "INSERT INTO devices (id, role, status, label, hamlet, created, approved)"
                " VALUES (?, ?, 'approved', ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET role = excluded.role, status = 'approved',"
                " label = coalesce(excluded.label, label), hamlet = coalesce(excluded.hamlet,"
                " hamlet), approved = coalesce(approved, excluded.approved)",
                (device_id, role, label, hamlet, now, now),
            )

        self.writer.call(task)
        with self._lock:
            self._status[device_id] = "approved"
            self._roles[device_id] = role
        log.info("device %s (%s) approved", device_id, role)
        return {"id": device_id, "role": role, "status": "approved"}

    def approve(self, device_id: str) -> dict[str, Any]:
        """Approve a pending device with the role it announced."""
        row = self.writer.call(lambda db: db.execute(
            "SELECT role FROM devices WHERE id = ?", (device_id,)).fetchone())
        if row is None:
            raise NotFound(_t("no device {id!r}"), id=device_id)
        if self._status.get(device_id) == "revoked":
            raise InvalidRequest(_t("device {id!r} is revoked: give it new credentials (device "
                                    "add) rather than approving it again"), id=device_id)
        return self.add(device_id, row[0] or "sim")

    def revoke(self, device_id: str) -> dict[str, Any]:
        """Refuse the device from now on (its history is kept); see
        :func:`controller.fleet.revocation.revoke` for the broker's side."""
        def task(db: sqlite_utils.Database) -> int:
            now = time.time()
            presence.closed(db, [device_id], now)
            return db.execute("UPDATE devices SET status = 'revoked', online = 0, revoked = ?"
                              " WHERE id = ?", (now, device_id)).rowcount
        if not self.writer.call(task):
            raise NotFound(_t("no device {id!r}"), id=device_id)
        with self._lock:
            self._status[device_id] = "revoked"
            self._liveness.pop(device_id, None)
            self._limits.pop(device_id, None)
        log.warning("device %s revoked", device_id)
        return {"id": device_id, "role": self._roles.get(device_id), "status": "revoked"}

    # -- what devices say ------------------------------------------------------------

    def birth(self, device_id: str, state: dict[str, Any]) -> None:
        if not self.is_approved(device_id) and device_id not in self._status:
            with self._lock:
                self._status[device_id] = "pending"
            log.warning("unknown device %s connected: listed as pending approval", device_id)
        now = time.time()

        def task(db: sqlite_utils.Database) -> None:
            db.execute(
                "INSERT INTO devices (id, role, status, created) VALUES (?, ?, 'pending', ?)"
                " ON CONFLICT (id) DO NOTHING", (device_id, state.get("role"), now))
            db.execute(
                "UPDATE devices SET online = 1, last_seen = ?, role = coalesce(role, ?),"
                " sw = ?, keepalive = ?, telemetry_interval = ?, reported_config_version = ?,"
                " mqtt_protocol = ? WHERE id = ?",
                (now, state.get("role"), state.get("sw"), state.get("keepalive"),
                 state.get("telemetry_interval"), state.get("config_version"),
                 state.get("mqtt_protocol"), device_id))
            presence.opened(db, device_id, now)

        # Liveness and the write change together, so a sweep can't overtake a birth.
        with self._lock:
            self._roles.setdefault(device_id, state.get("role"))
            self._limits[device_id] = SILENCE * (state.get("keepalive") or DEFAULT_KEEPALIVE)
            self._liveness[device_id] = now
            self.writer.submit(task)

    def offline(self, device_id: str) -> None:
        if device_id not in self._status:
            return
        now = time.time()

        def task(db: sqlite_utils.Database) -> None:
            db.execute("UPDATE devices SET online = 0 WHERE id = ?", (device_id,))
            presence.closed(db, [device_id], now)

        with self._lock:
            self._liveness.pop(device_id, None)
            self._limits.pop(device_id, None)  # only a new birth brings it back
            self.writer.submit(task)
        log.info("device %s offline", device_id)

    def telemetry(self, device_id: str, figures: dict[str, Any]) -> None:
        if device_id not in self._status:
            return
        self.heard(device_id)
        now = time.time()
        text = json.dumps(figures, ensure_ascii=False)
        self._telemetry_count += 1
        prune = self._telemetry_count % 100 == 0

        def task(db: sqlite_utils.Database) -> None:
            db.execute("UPDATE devices SET telemetry = ?, last_seen = ? WHERE id = ?",
                       (text, now, device_id))
            db.execute("INSERT INTO telemetry (device, received, data) VALUES (?, ?, ?)",
                       (device_id, now, text))
            if prune:
                db.execute(
                    "DELETE FROM telemetry WHERE device = ? AND id <= (SELECT id FROM telemetry"
                    " WHERE device = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (device_id, device_id, TELEMETRY_HISTORY))

        self.writer.submit(task)

    def reported_config(self, device_id: str, version: int) -> None:
        self.writer.submit(lambda db: db.execute(
            "UPDATE devices SET reported_config_version = ? WHERE id = ?", (version, device_id)))

    def sweep(self, now: float | None = None) -> list[str]:
        """Mark offline the online devices silent too long (in memory, cheap)."""
        now = now or time.time()
        with self._lock:
            stale = [d for d, heard in self._liveness.items()
                     if now - heard > self._limits.get(d, SILENCE * DEFAULT_KEEPALIVE)]
            # Offline since it was last heard, not since the sweep noticed.
            last_heard = {d: self._liveness.pop(d) for d in stale}
            if stale:
                def task(db: sqlite_utils.Database) -> None:
                    db.conn.executemany("UPDATE devices SET online = 0 WHERE id = ?",
                                        [(d,) for d in stale])
                    presence.closed(db, stale, last_heard)
                self.writer.submit(task)
        for device_id in stale:
            log.info("device %s silent for %s x keepalive: offline", device_id, SILENCE)
        return stale


# -- reads (any connection) ----------------------------------------------------------

_DEVICE_COLUMNS = (
    "id, role, status, label, hamlet, online, last_seen, sw, mqtt_protocol,"
    " reported_config_version, desired_config_version, telemetry, serial, credentials_issued"
)


def _device_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (device_id, role, status, label, hamlet, online, last_seen, sw, mqtt_protocol, reported,
     desired, telemetry, serial, issued) = row
    return {
        "id": device_id, "role": role, "status": status, "label": label, "hamlet": hamlet,
        "online": bool(online), "last_seen": last_seen, "sw": sw, "mqtt_protocol": mqtt_protocol,
        "config_version": {"reported": reported, "desired": desired},
        "telemetry": json.loads(telemetry) if telemetry else None,
        "serial": serial, "credentials_issued": issued,
    }


def list_devices(db: sqlite_utils.Database, *, status: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_DEVICE_COLUMNS} FROM devices"
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    return [_device_row(r) for r in db.execute(sql + " ORDER BY id", params).fetchall()]


def get_device(db: sqlite_utils.Database, device_id: str) -> dict[str, Any]:
    row = db.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?",
                     (device_id,)).fetchone()
    if row is None:
        raise NotFound(_t("no device {id!r}"), id=device_id)
    return _device_row(row)


def telemetry_history(db: sqlite_utils.Database, device_id: str,
                      limit: int = 100) -> list[dict[str, Any]]:
    rows = db.execute("SELECT received, data FROM telemetry WHERE device = ?"
                      " ORDER BY id DESC LIMIT ?", (device_id, limit)).fetchall()
    return [{"received": r[0], **json.loads(r[1])} for r in rows]
