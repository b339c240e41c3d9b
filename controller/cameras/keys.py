"""Each camera's signing key: the first one it reports is pinned, and clips are verified
against the pinned key. A different key later is recorded and alerted, never trusted on
the camera's word: a technician accepts it (a replaced SD card, a re-provisioned camera)
or investigates (someone re-signed footage)."""

from __future__ import annotations

import re
import time
from typing import Any

import sqlite_utils

from controller.errors import InvalidRequest, NotFound, _t
from wire.footage import key_fingerprint

KEY_RE = re.compile(r"[0-9a-f]{64}")
#: What :func:`record_key` found.
PINNED, SAME, KNOWN, NEW = "pinned", "same", "known", "new"


def check_key(value: Any) -> str:
    """A public key as the wire carries it: 64 hex digits (Ed25519's 32 bytes)."""
    if not isinstance(value, str) or not KEY_RE.fullmatch(value.strip().lower()):
        raise ValueError(f"public key {str(value)[:80]!r}: expected 64 hex digits")
    return value.strip().lower()


def record_key(db: sqlite_utils.Database, camera: str, public_key: str) -> str:
    """Note a key the camera reported: :data:`PINNED` (its first, now pinned), :data:`SAME`
    (the pinned one), :data:`KNOWN` (another key seen before, still not accepted) or
    :data:`NEW` (another key, first seen now: alert)."""
    now = time.time()
    seen = db.execute("SELECT pinned FROM camera_keys WHERE camera = ? AND public_key = ?",
                      (camera, public_key)).fetchone()
    if seen is not None:
        db.execute("UPDATE camera_keys SET last_seen = ? WHERE camera = ? AND public_key = ?",
                   (now, camera, public_key))
        return SAME if seen[0] else KNOWN
    first = pinned_key(db, camera) is None
    db.execute("INSERT INTO camera_keys (camera, public_key, first_seen, last_seen, pinned)"
               " VALUES (?, ?, ?, ?, ?)", (camera, public_key, now, now, int(first)))
    return PINNED if first else NEW


def pinned_key(db: sqlite_utils.Database, camera: str) -> str | None:
    row = db.execute("SELECT public_key FROM camera_keys WHERE camera = ? AND pinned = 1",
                     (camera,)).fetchone()
    return row[0] if row else None


def accept_key(db: sqlite_utils.Database, camera: str, public_key: str,
               user: str | None) -> dict[str, Any]:
    """Writer task: pin ``public_key``, which ``camera`` reported, in place of the old one."""
    try:
        public_key = check_key(public_key)
    except ValueError:
        raise InvalidRequest(_t("public key {key!r}: expected 64 hex digits"),
                             key=str(public_key)[:80]) from None
    if db.execute("SELECT 1 FROM camera_keys WHERE camera = ? AND public_key = ?",
                  (camera, public_key)).fetchone() is None:
        raise NotFound(_t("camera {camera!r} never reported the key {fingerprint}"),
                       camera=camera, fingerprint=key_fingerprint(public_key))
    db.execute("UPDATE camera_keys SET pinned = 0 WHERE camera = ?", (camera,))
    db.execute("UPDATE camera_keys SET pinned = 1, accepted = ?, accepted_by = ?"
               " WHERE camera = ? AND public_key = ?", (time.time(), user, camera, public_key))
    return {"camera": camera, "public_key": public_key,
            "fingerprint": key_fingerprint(public_key)}


def keys_of(db: sqlite_utils.Database, camera: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT public_key, first_seen, last_seen, pinned, accepted, accepted_by"
                      " FROM camera_keys WHERE camera = ? ORDER BY first_seen",
                      (camera,)).fetchall()
    return [{"public_key": r[0], "fingerprint": key_fingerprint(r[0]), "first_seen": r[1],
             "last_seen": r[2], "pinned": bool(r[3]), "accepted": r[4], "accepted_by": r[5]}
            for r in rows]
