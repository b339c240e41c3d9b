"""When each device was online: intervals kept so availability over any period is known.

The registry opens an interval when a device is born or heard from again and
closes it when the device goes offline (its will, the liveness sweep, a
revocation). A reconnect within :data:`MERGE_GAP_S` of the last close reopens
that interval rather than starting a new one, so a flapping link adds rows
at most once a minute; rows closed more than :data:`KEEP_DAYS` ago are
pruned hourly, so the table is bounded per device.

History starts when the controller began keeping it (``presence_tracking``):
before that nothing is known, and that time is left out of the figures
rather than counted as offline.
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

#: A reconnect this soon after going offline continues the same interval.
MERGE_GAP_S = 60.0
#: Closed intervals are kept this long (two reporting years and a margin).
KEEP_DAYS = 800


def opened(db: sqlite_utils.Database, device_id: str, at: float) -> None:
    """The device is online from ``at`` (no-op when an interval is already open)."""
    if db.execute("SELECT 1 FROM device_presence WHERE device = ? AND until IS NULL",
                  (device_id,)).fetchone():
        return
    last = db.execute("SELECT id, until FROM device_presence WHERE device = ?"
                      " ORDER BY since DESC LIMIT 1", (device_id,)).fetchone()
    if last is not None and at - last[1] <= MERGE_GAP_S:
        db.execute("UPDATE device_presence SET until = NULL WHERE id = ?", (last[0],))
    else:
        db.execute("INSERT INTO device_presence (device, since) VALUES (?, ?)",
                   (device_id, at))


def closed(db: sqlite_utils.Database, device_ids: list[str], at: float | dict[str, float]) -> None:
    """The devices went offline at ``at`` (one time, or one per device)."""
    db.conn.executemany(
        "UPDATE device_presence SET until = max(since, ?) WHERE device = ? AND until IS NULL",
        [(at[d] if isinstance(at, dict) else at, d) for d in device_ids])


def reconcile(db: sqlite_utils.Database) -> None:
    """At start: an interval left open for a device the registry holds offline (the
    controller stopped while it was online and it went quiet) ends when it was last
    seen; one for a device still online stays open."""
    db.execute(
        "UPDATE device_presence SET until = max(since, coalesce((SELECT last_seen FROM devices"
        " WHERE devices.id = device_presence.device), since))"
        " WHERE until IS NULL AND device IN (SELECT id FROM devices WHERE online = 0)")


def prune(db: sqlite_utils.Database, now: float | None = None) -> int:
    cutoff = (now or time.time()) - KEEP_DAYS * 86400
    return db.execute("DELETE FROM device_presence WHERE until < ?", (cutoff,)).rowcount


def availability(db: sqlite_utils.Database, since: float, until: float,
                 now: float | None = None) -> dict[str, Any]:
    """Share of time each approved device was online in [since, until), and per role.

    A device counts from when it was registered and from when history was kept,
    and only up to now: the future is not offline. ``observed_s`` is the time a
    device was watched in the period, ``online_s`` how much of it it was online;
    a role's availability is its devices' online time over their watched time.
    """
    now = time.time() if now is None else now
    end = min(until, now)
    row = db.execute("SELECT started FROM presence_tracking").fetchone()
    tracked_from = row[0] if row else now
    devices = db.execute(
        "SELECT id, role, created FROM devices WHERE status = 'approved' ORDER BY id"
    ).fetchall()
    online = dict(db.execute(
        "SELECT p.device, sum(max(0, min(coalesce(p.until, ?), ?)"
        " - max(p.since, ?, ?, coalesce(d.created, 0))))"
        " FROM device_presence p JOIN devices d ON d.id = p.device"
        " WHERE p.since < ? AND coalesce(p.until, ?) > ? GROUP BY p.device",
        (now, end, since, tracked_from, end, now, since)).fetchall())
    listed = []
    for device_id, role, created in devices:
        start = max(since, created or since, tracked_from)
        observed = max(0.0, end - start)
        online_s = min(observed, max(0.0, online.get(device_id) or 0.0))
        listed.append({"id": device_id, "role": role or "", "observed_s": round(observed, 1),
                       "online_s": round(online_s, 1),
                       "availability": round(online_s / observed, 4) if observed else None})
    roles: dict[str, dict[str, float]] = {}
    for device in listed:
        figures = roles.setdefault(device["role"], {"devices": 0, "observed_s": 0.0,
                                                    "online_s": 0.0})
        figures["devices"] += 1
        figures["observed_s"] += device["observed_s"]
        figures["online_s"] += device["online_s"]
    by_role = [{"role": role, "devices": int(f["devices"]),
                "observed_s": round(f["observed_s"], 1), "online_s": round(f["online_s"], 1),
                "availability": round(f["online_s"] / f["observed_s"], 4)
                if f["observed_s"] else None}
               for role, f in sorted(roles.items())]
    return {"since": since, "until": until, "tracked_from": tracked_from,
            "devices": listed, "roles": by_role}
