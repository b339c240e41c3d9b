"""Importing a device's card (:mod:`provisioning.card`): the registry entry, its hamlet or
desk, its camera key and its broker account, from a card made offline.

Importing a card for a device the registry already holds is a *replacement* (new
hardware for the same identity, asked for explicitly): the id keeps its hamlet,
desk, desired config, schedule and history, the new password hash replaces the
old one at the broker, and the broker re-reads its accounts at once, closing the
old hardware's connection and refusing its password from then on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlite_utils

from controller.broker import BrokerConfig, signal_reload
from controller.errors import InvalidRequest, _t
from controller.fleet.registry import Registry
from provisioning.card import CardError, DeviceCard

log = logging.getLogger(__name__)


class Cards:
    """Imports cards into the registry and the broker (``broker`` None: registry only)."""

    def __init__(self, registry: Registry, broker: BrokerConfig | None, *,
                 imported: Callable[[DeviceCard], None] | None = None):
        self.registry = registry
        self.broker = broker
        #: Called after a card is imported: the service sends a kiosk its desk and a
        #: speaker its hamlet's schedule at once.
        self._imported = imported

    def parse(self, text: str | bytes, source: str = "card") -> DeviceCard:
        try:
            return DeviceCard.from_json(text, source=source)
        except CardError as exc:
            raise InvalidRequest(str(exc)) from None

    def import_card(self, card: DeviceCard, *, replace: bool = False,
                    user: str | None = None) -> dict[str, Any]:
        """Register ``card``'s device; ``replace`` must be given for a known id."""
        existing = self.registry.writer.call(lambda db: db.execute(
            "SELECT role, status FROM devices WHERE id = ?", (card.device_id,)).fetchone())
        if existing is not None and existing[0] not in (None, card.role):
            raise InvalidRequest(_t("device {id!r} is a {role}; this card is for a {card_role}"),
                                 id=card.device_id, role=existing[0], card_role=card.role)
        known = existing is not None and existing[1] in ("approved", "revoked")
        if known and not replace:
            raise InvalidRequest(_t("device {id!r} is already registered: importing this card "
                                    "replaces its credentials and locks the old hardware out; "
                                    "ask for a replacement to do so"), id=card.device_id)
        self.registry.add(card.device_id, card.role, label=card.label, hamlet=card.hamlet)
        self.registry.writer.call(lambda db: _attach(db, card, user))
        if self._imported is not None:
            self._imported(card)
        broker_reloaded = False
        if self.broker is not None:
            self.broker.add_hashed(card.device_id, card.password_hash)
            broker_reloaded = signal_reload(self.broker)
        log.warning("device %s %s from its card", card.device_id,
                    "replaced" if known else "imported")
        return {"id": card.device_id, "role": card.role, "hamlet": card.hamlet,
                "desk": card.desk, "replaced": known, "broker_reloaded": broker_reloaded}


def _attach(db: sqlite_utils.Database, card: DeviceCard, user: str | None) -> None:
    """Writer task: new hardware (no serial known yet), its desk and camera key."""
    now = time.time()
    db.execute("UPDATE devices SET serial = NULL, credentials_issued = ? WHERE id = ?",
               (now, card.device_id))
    if card.desk:
        db.execute("INSERT INTO desks (id, name, created) VALUES (?, ?, ?)"
                   " ON CONFLICT (id) DO NOTHING", (card.desk, card.desk, now))
        if card.role == "kiosk":
            db.execute("UPDATE desks SET kiosk = NULL WHERE kiosk = ?", (card.device_id,))
            db.execute("UPDATE desks SET kiosk = ? WHERE id = ?", (card.device_id, card.desk))
        else:
            db.execute("INSERT INTO desk_cameras (camera, desk, updated) VALUES (?, ?, ?)"
                       " ON CONFLICT (camera) DO UPDATE SET desk = excluded.desk,"
                       " updated = excluded.updated", (card.device_id, card.desk, now))
    if card.role == "camera":
        # New hardware starts a new footage chain from seq 0: the old card's heads would
        # read as rewritten footage. Clips already fetched were verified when they came.
        db.execute("DELETE FROM footage_heads WHERE camera = ?", (card.device_id,))
    if card.camera_key:
        db.execute("UPDATE camera_keys SET pinned = 0 WHERE camera = ?", (card.device_id,))
        db.execute("INSERT INTO camera_keys (camera, public_key, first_seen, last_seen, pinned,"
                   " accepted, accepted_by) VALUES (?, ?, ?, ?, 1, ?, ?)"
                   " ON CONFLICT DO UPDATE SET pinned = 1, accepted = excluded.accepted,"
                   " accepted_by = excluded.accepted_by",
                   (card.device_id, card.camera_key, now, now, now, user or "card"))
