"""Enrolment by claim: a device put into service with a one-time token instead of a card.

1. A technician asks for a token for a device id and role (``enrol create``, the
   console, ``POST /api/v1/enrolments``); only its SHA-256 is kept; it expires
   (7 days unless asked otherwise) and serves once.
2. The device boots with it in its node file, makes its own broker password,
   and claims: token, hardware serial, board model and the password's ``$7$``
   hash (``POST /api/v1/enrol``). It appears as a ``pending`` device with that
   serial; asking again with the same serial is answered the same way.
3. A technician approves it (``device approve``, the console): its broker account
   is made from the hash and the broker re-reads its accounts. The device, polling
   with its token, learns it is approved and connects. Its password never left it.

An expired token, one already claimed by other hardware, or an unknown one, is
refused with the reason (403).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

import sqlite_utils

from controller.errors import Forbidden, InvalidRequest, _t
from controller.fleet.cards import Cards
from provisioning.card import CardError, DeviceCard, check_device

TOKEN_PREFIX = "te_"
DEFAULT_TTL_S = 7 * 86400
MAX_TTL_S = 90 * 86400
MAX_OPEN = 1000  # open tokens at once: what a commune could use, not what a bug could make
_SERIAL = re.compile(r"[0-9A-Za-z:._-]{4,64}")
_HASH = re.compile(r"\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Enrolment:
    def __init__(self, cards: Cards):
        self.cards = cards
        self.writer = cards.registry.writer

    def create(self, device_id: str, role: str, *, hamlet: str | None = None,
               desk: str | None = None, label: str | None = None, ttl_s: float = DEFAULT_TTL_S,
               user: str | None = None) -> dict[str, Any]:
        """A new one-time token for ``device_id`` (shown once; kept as its hash)."""
        try:
            check_device(device_id, role, hamlet=hamlet, desk=desk, label=label)
        except CardError as exc:
            raise InvalidRequest(str(exc).replace("card ", "", 1)) from None
        if not 60 <= ttl_s <= MAX_TTL_S:
            raise InvalidRequest(_t("token lifetime {ttl} s: expected 60 s to 90 days"),
                                 ttl=ttl_s)
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        now = time.time()

        def task(db: sqlite_utils.Database) -> None:
            row = db.execute("SELECT status FROM devices WHERE id = ?", (device_id,)).fetchone()
            if row is not None and row[0] != "pending":
                raise InvalidRequest(_t("device {id!r} is already registered: replace it with a "
                                        "new card instead"), id=device_id)
            open_ = db.execute("SELECT count(*) FROM enrolments WHERE status IN ('open',"
                               " 'claimed') AND expires > ?", (now,)).fetchone()[0]
            if open_ >= MAX_OPEN:
                raise InvalidRequest(_t("{count} enrolment tokens are open: use or let some "
                                        "expire first"), count=open_)
            db.execute("UPDATE enrolments SET status = 'refused' WHERE device_id = ?"
                       " AND status IN ('open', 'claimed')", (device_id,))
            db.execute("INSERT INTO enrolments (token_sha256, device_id, role, hamlet, desk,"
                       " label, created, created_by, expires, status)"
                       " VALUES (?,?,?,?,?,?,?,?,?,'open')",
                       (_sha(token), device_id, role, hamlet, desk, label, now, user,
                        now + ttl_s))

        self.writer.call(task)
        return {"token": token, "device_id": device_id, "role": role, "expires": now + ttl_s}

    def claim(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """The device's claim (or its poll, with the same body): its status."""
        serial, model = body.get("serial"), body.get("model")
        password_hash = body.get("password_hash")
        if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
            raise InvalidRequest(_t("serial {value!r}: expected 4-64 of letters, digits, "
                                    "':._-'"), value=str(serial)[:80])
        if model is not None and (not isinstance(model, str) or len(model) > 100):
            raise InvalidRequest(_t("model: expected text of at most 100 characters"))
        if not isinstance(password_hash, str) or not _HASH.fullmatch(password_hash):
            raise InvalidRequest(_t("password_hash: expected a Mosquitto '$7$...' hash"))
        now = time.time()

        def task(db: sqlite_utils.Database) -> dict[str, Any]:
            row = db.execute("SELECT device_id, role, hamlet, label, expires, status, serial,"
                             " password_hash FROM enrolments WHERE token_sha256 = ?",
                             (_sha(token),)).fetchone()
            if row is None:
                raise Forbidden(_t("unknown enrolment token"))
            device_id, role, hamlet, label, expires, status, claimed_by, known_hash = row
            if status == "refused":
                raise Forbidden(_t("enrolment token for {id!r} was withdrawn"), id=device_id)
            if claimed_by is not None and (claimed_by != serial or known_hash != password_hash):
                raise Forbidden(_t("enrolment token for {id!r} was already used by hardware "
                                   "{serial}"), id=device_id, serial=claimed_by)
            if status == "approved":
                return {"device_id": device_id, "status": "approved"}
            if now >= expires:
                raise Forbidden(_t("enrolment token for {id!r} expired at {at}: ask for a new "
                                   "one"), id=device_id,
                                at=time.strftime("%Y-%m-%d %H:%M", time.localtime(expires)))
            if status == "open":
                db.execute("UPDATE enrolments SET status = 'claimed', claimed = ?, serial = ?,"
                           " model = ?, password_hash = ? WHERE token_sha256 = ?",
                           (now, serial, model, password_hash, _sha(token)))
                db.execute("INSERT INTO devices (id, role, status, label, hamlet, created,"
                           " serial) VALUES (?, ?, 'pending', ?, ?, ?, ?)"
                           " ON CONFLICT (id) DO UPDATE SET serial = excluded.serial,"
                           " role = excluded.role", (device_id, role, label, hamlet, now, serial))
            return {"device_id": device_id, "status": "pending"}

        return self.writer.call(task)  # type: ignore[no-any-return]

    def approve(self, device_id: str, user: str | None = None) -> dict[str, Any] | None:
        """Approve ``device_id``'s claim (None: it has none; approve it as before)."""
        row = self.writer.call(lambda db: db.execute(
            "SELECT token_sha256, role, hamlet, desk, label, password_hash, serial"
            " FROM enrolments WHERE device_id = ? AND status = 'claimed'",
            (device_id,)).fetchone())
        if row is None:
            return None
        sha, role, hamlet, desk, label, password_hash, serial = row
        card = DeviceCard(device_id, role, password_hash, hamlet=hamlet, desk=desk, label=label)
        result = self.cards.import_card(card, user=user)
        now = time.time()

        def task(db: sqlite_utils.Database) -> None:
            db.execute("UPDATE enrolments SET status = 'approved', approved = ?,"
                       " approved_by = ? WHERE token_sha256 = ?", (now, user, sha))
            db.execute("UPDATE devices SET serial = ? WHERE id = ?", (serial, device_id))

        self.writer.call(task)
        return {**result, "status": "approved", "serial": serial}


def list_enrolments(db: sqlite_utils.Database, *, now: float | None = None
                    ) -> list[dict[str, Any]]:
    """Tokens not yet used up, newest first (never the token itself)."""
    now = time.time() if now is None else now
    rows = db.execute(
        "SELECT device_id, role, hamlet, desk, label, created, created_by, expires, status,"
        " claimed, serial, model FROM enrolments WHERE status IN ('open', 'claimed')"
        " ORDER BY created DESC LIMIT 1000").fetchall()
    keys = ("device_id", "role", "hamlet", "desk", "label", "created", "created_by", "expires",
            "status", "claimed", "serial", "model")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for item in out:
        item["expired"] = item["expires"] <= now
    return out

