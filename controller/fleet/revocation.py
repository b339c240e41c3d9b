"""Revoking a device: a lost kiosk, a stolen SD card, a speaker taken out of service.

Three steps, in this order: the registry marks it ``revoked`` (its history is
kept; anything it still sends is refused), its broker account is removed, and
the running broker is told to reload, which closes the device's open
connection at once (Mosquitto drops clients whose account is gone on reload).
Without a running broker to signal (the CLI on a machine where it is stopped),
the account is gone when it next starts.
"""

from __future__ import annotations

import logging
from typing import Any

from controller.broker import BrokerConfig, signal_reload
from controller.errors import InvalidRequest
from controller.fleet.registry import Registry
from wire.errors import TopicError
from wire.topics import check_device_id

log = logging.getLogger(__name__)


class Revocation:
    """Revokes devices in the registry and at the broker (``broker`` None: registry only,
    for a controller run without the broker's files)."""

    def __init__(self, registry: Registry, broker: BrokerConfig | None):
        self.registry = registry
        self.broker = broker

    def revoke(self, device_id: str) -> dict[str, Any]:
        """Revoke ``device_id``; says whether its account was removed and the broker
        reloaded. NotFound for a device the registry does not know."""
        try:
            check_device_id(device_id)
        except TopicError as exc:
            raise InvalidRequest(str(exc)) from None
        result = self.registry.revoke(device_id)
        removed = self.broker.remove_user(device_id) if self.broker else False
        reloaded = signal_reload(self.broker) if self.broker else False
        if self.broker and not reloaded:
            log.warning("revoked %s, but no running broker to reload: its account is gone "
                        "when the broker next starts (systemctl reload thanthien-broker)",
                        device_id)
        return {**result, "broker_account_removed": removed, "broker_reloaded": reloaded}
