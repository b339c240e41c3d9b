"""Message kinds of the wire contract: JSON objects with a schema version.

Every message is a JSON object carrying ``"v": SCHEMA_VERSION``. ``decode``
checks size, JSON, version and each field's type for its kind, and raises
:class:`MessageError` naming what was wrong; both sides call it on receipt.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from typing import Any

from wire.camera import (
    EVENT_CAMERA_KEY,
    EVENT_CLIP_STATE,
    EVENT_FOOTAGE_HEAD,
    EVENT_HOLD_STATE,
)
from wire.errors import MessageError
from wire.topics import Topic

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 64 * 1024

#: MQTT protocol levels a device may report it speaks: 5, 3.1.1, 3.1.
MQTT_PROTOCOLS = (5, 4, 3)

#: Which roles may file which event types (a speaker files no ratings, a kiosk no play
#: receipts); a type not listed here may come from any role. ``sim`` devices (the demo's
#: and tests' simulated ones) may file any.
EVENT_ROLES: dict[str, tuple[str, ...]] = {
    "rating": ("kiosk", "sim"),
    "rating_detail": ("kiosk", "sim"),
    "playback": ("speaker", "sim"),
    **{kind: ("camera", "sim") for kind in (EVENT_FOOTAGE_HEAD, EVENT_CAMERA_KEY,
                                            EVENT_HOLD_STATE, EVENT_CLIP_STATE)},
}

#: Integers on the wire fit SQLite's (signed 64-bit).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: How deep objects and arrays may nest in a message (the deepest, a speaker's
#: config, nests 6). Deeper JSON is refused: Python's parser recurses, and what is
#: stored must be answered again by the API, whose encoder stops far below 1,000.
MAX_DEPTH = 16

#: Results a device may report for a command.
COMMAND_STATUSES = ("done", "failed", "expired", "unknown")

#: Event types the runtime itself emits (roles add their own, e.g. ``rating``).
EVENT_COMMAND_RESULT = "command_result"
EVENT_CONFIG_APPLIED = "config_applied"
#: A node whose database could not be read set it aside and started afresh: its events'
#: sequence numbers start again from 1 (data: ``reason``).
EVENT_STORAGE_RESET = "storage_reset"

_NUM = (int, float)
_OPT = object()  # marker: field may be absent or null

# kind -> {field: (accepted types, required)}
_SCHEMAS: dict[Topic, dict[str, tuple[Any, bool]]] = {
    Topic.STATE: {
        "status": (str, True),
        "role": (str, False),
        "sw": (str, False),
        "config_version": (int, False),
        "keepalive": (int, False),
        "mqtt_protocol": (int, False),
        "telemetry_interval": (_NUM, False),
        "ts": (str, False),
    },
    Topic.TELEMETRY: {
        "ts": (str, True),
        "uptime_s": (_NUM, True),
        "cpu_temp_c": (_NUM, False),
        "load1": (_NUM, False),
        "mem_available_mb": (_NUM, False),
        "disk_free_mb": (_NUM, False),
        "sw": (str, False),
        "clock_synced": (bool, True),
        "outbox_depth": (int, True),
    },
    Topic.EVENTS: {
        "id": (str, True),
        "seq": (int, True),
        "device": (str, True),
        "type": (str, True),
        "ts": (str, True),
        "clock_synced": (bool, True),
        "data": (dict, True),
    },
    Topic.ACKS: {"ids": (list, True)},
    Topic.COMMANDS: {
        "id": (str, True),
        "name": (str, True),
        "args": (dict, True),
        "expires": (str, True),
    },
    Topic.CONFIG: {"version": (int, True), "config": (dict, True)},
}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_ts(when: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: the one timestamp form on the wire."""
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> dt.datetime:
    """Parse a wire timestamp; raise :class:`MessageError` if it is not one."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise MessageError(f"invalid timestamp {text!r}: expected ISO 8601 UTC", "field") from None
    if when.tzinfo is None:
        raise MessageError(f"timestamp {text!r} has no time zone: expected UTC 'Z'", "field")
    return when


def encode(kind: Topic, body: dict[str, Any]) -> bytes:
    """Serialise ``body`` as a message of ``kind``, validating it first."""
    message = {"v": SCHEMA_VERSION, **body}
    _validate(kind, message)
    try:
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":"),
                             allow_nan=False).encode()
    except ValueError:
        raise MessageError(f"{kind.value} message holds NaN or Infinity, which JSON has "
                           "not", "json") from None
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(
            f"{kind.value} message is {len(payload)} bytes, "
            f"over the {MAX_PAYLOAD_BYTES}-byte limit",
            "size",
        )
    return payload


#: JSON text with non-ASCII kept as it is (Vietnamese stays readable in a database),
#: from one encoder (``json.dumps`` with arguments builds a new encoder every call).
json_text = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def decode(kind: Topic, payload: bytes) -> dict[str, Any]:
    """Parse and validate a received payload of ``kind``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError(
            f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit", "size"
        )
    try:
        message = _DECODER.decode(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"payload is not JSON: {exc}", "json") from None
    except RecursionError:
        raise MessageError(f"payload nests deeper than {MAX_DEPTH}", "json") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise MessageError(f"payload is not usable JSON: {exc}", "json") from None
    check_depth(message, f"{kind.value} message")
    _validate(kind, message)
    return message


def new_event(
    device: str, seq: int, type_: str, data: dict[str, Any], *, clock_synced: bool,
    when: dt.datetime | None = None,
) -> dict[str, Any]:
    """Build the body of a durable event with a fresh UUID."""
    return {
        "id": str(uuid.uuid4()),
        "seq": seq,
        "device": device,
        "type": type_,
        "ts": format_ts(when or utc_now()),
        "clock_synced": clock_synced,
        "data": data,
    }


def _validate(kind: Topic, message: Any) -> None:
    if not isinstance(message, dict):
        raise MessageError(f"{kind.value} message must be a JSON object", "json")
    version = message.get("v")
    if version != SCHEMA_VERSION:
        raise MessageError(
            f"{kind.value} message has schema version {version!r}, expected {SCHEMA_VERSION}",
            "schema",
        )
    for field, (types, required) in _SCHEMAS[kind].items():
        value = message.get(field)
        if value is None:
            if required:
                raise MessageError(f"{kind.value} message lacks field {field!r}", "field")
            continue
        # bool is an int in Python; a flag is never a number on the wire, nor vice versa.
        if isinstance(value, bool) and types is not bool:
            ok = False
        else:
            ok = isinstance(value, types)
        if ok and isinstance(value, int) and not isinstance(value, bool) and not (
                INT64_MIN <= value <= INT64_MAX):
            raise MessageError(f"{kind.value} field {field!r} is {value}: outside 64-bit "
                               "integers", "field")
        if not ok:
            raise MessageError(
                f"{kind.value} field {field!r} has {type(value).__name__} {value!r}, "
                f"expected {_type_name(types)}",
                "field",
            )
    _check_values(kind, message)


def check_depth(value: Any, what: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`MessageError` if objects and arrays nest deeper than ``limit`` in
    ``value`` (walked without recursion, visiting containers only: cheap on the hot path)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        container, depth = stack.pop()
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, dict | list):
                if depth >= limit:
                    raise MessageError(f"{what} nests deeper than {limit} objects or arrays",
                                       "json")
                stack.append((child, depth + 1))


def _finite(text: str) -> float:
    """A JSON number as a float; one too large for a float (``1e999``) is refused rather
    than read as infinity, which nothing could store or send again."""
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError(f"{text[:40]} is too large a number", text, 0)
    return value


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259); Python's parser accepts them by default."""
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


#: One strict decoder for every message (``json.loads`` with hooks builds one per call).
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _check_values(kind: Topic, message: dict[str, Any]) -> None:
    if kind is Topic.EVENTS:
        try:
            uuid.UUID(message["id"])
        except ValueError:
            raise MessageError(f"event id {message['id']!r} is not a UUID", "field") from None
        if message["seq"] < 1:
            raise MessageError(f"event seq {message['seq']} must be >= 1", "field")
        parse_ts(message["ts"])
        if not message["ts"].endswith("Z"):  # stored and compared as text: one zone
            raise MessageError(f"event ts {message['ts']!r}: expected UTC, ending in 'Z'",
                               "field")
    elif kind is Topic.COMMANDS:
        parse_ts(message["expires"])
    elif kind is Topic.STATE:
        _check_state(message)
    elif kind is Topic.ACKS and not all(isinstance(i, str) for i in message["ids"]):
        raise MessageError("ack ids must be strings", "field")


def _check_state(message: dict[str, Any]) -> None:
    if message["status"] not in ("online", "offline"):
        raise MessageError(
            f"state status {message['status']!r}: expected 'online' or 'offline'", "field"
        )
    protocol = message.get("mqtt_protocol")
    if protocol is not None and protocol not in MQTT_PROTOCOLS:
        raise MessageError(
            f"state mqtt_protocol {protocol!r}: expected one of {MQTT_PROTOCOLS}", "field"
        )


def _type_name(types: Any) -> str:
    if isinstance(types, tuple):
        return "number"
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}[types]
