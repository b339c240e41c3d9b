"""The versioned MQTT topic tree.

Every device owns one subtree, ``tt/v1/dev/<device-id>/...``, so a broker ACL
pattern on the device's username (``%u``) confines it to its own messages.
Topic strings are spelled only here.
"""

from __future__ import annotations

import enum
import re

from wire.errors import TopicError

ROOT = "tt/v1"
DEVICE_ROOT = f"{ROOT}/dev"
#: Controller -> dashboards: a desk got many negative answers (not retained).
ALERTS = f"{ROOT}/alerts"

#: Device ids double as MQTT usernames: lowercase, digits and dashes.
DEVICE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
#: The controller's own broker account: never a device's id (a device so named would
#: replace the controller's password and take over its session).
CONTROLLER_ACCOUNT = "controller"
RESERVED_IDS = frozenset({CONTROLLER_ACCOUNT})


class Topic(enum.Enum):
    """The leaf names under a device's subtree, and who publishes them."""

    STATE = "state"  # device -> controller, retained; birth and will
    TELEMETRY = "telemetry"  # device -> controller
    EVENTS = "events"  # device -> controller, durable, acked
    ACKS = "acks"  # controller -> device
    COMMANDS = "commands"  # controller -> device, never retained
    CONFIG = "config"  # controller -> device, retained desired config

    @property
    def from_device(self) -> bool:
        return self in (Topic.STATE, Topic.TELEMETRY, Topic.EVENTS)


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is a valid id, else raise :class:`TopicError`."""
    if not isinstance(device_id, str) or not DEVICE_ID_RE.fullmatch(device_id):
        raise TopicError(
            f"invalid device id {device_id!r}: expected 2-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    if device_id in RESERVED_IDS:
        raise TopicError(f"device id {device_id!r} is reserved for the controller's own "
                         "broker account; choose another")
    return device_id


def device_topic(device_id: str, leaf: Topic) -> str:
    """The topic of ``leaf`` in the subtree of ``device_id``."""
    return f"{DEVICE_ROOT}/{check_device_id(device_id)}/{leaf.value}"


def subscription(leaf: Topic) -> str:
    """A wildcard subscription to ``leaf`` of every device (for the controller)."""
    return f"{DEVICE_ROOT}/+/{leaf.value}"


def parse_topic(topic: str) -> tuple[str, Topic]:
    """Split a device topic into ``(device_id, leaf)``; raise :class:`TopicError` if foreign."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != DEVICE_ROOT:
        raise TopicError(f"topic {topic!r} is not of the form {DEVICE_ROOT}/<device>/<leaf>")
    try:
        leaf = Topic(parts[4])
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown leaf {parts[4]!r}") from None
    return check_device_id(parts[3]), leaf


def acl_patterns() -> list[str]:
    """Mosquitto ACL ``pattern`` lines confining each device to its own subtree."""
    lines = []
    for leaf in Topic:
        access = "write" if leaf.from_device else "read"
        lines.append(f"pattern {access} {DEVICE_ROOT}/%u/{leaf.value}")
    return lines
