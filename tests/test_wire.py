"""The wire contract: topics, validation, size limit, ACL patterns."""

from __future__ import annotations

import json

import pytest

from wire import MAX_PAYLOAD_BYTES, MessageError, Topic, TopicError, decode, encode, new_event
from wire.topics import acl_patterns, device_topic, parse_topic


def test_topic_round_trips_device_and_leaf():
    topic = device_topic("speaker-ap3-01", Topic.EVENTS)
    assert topic == "tt/v1/dev/speaker-ap3-01/events"
    assert parse_topic(topic) == ("speaker-ap3-01", Topic.EVENTS)


@pytest.mark.parametrize("bad", ["", "A", "Kiosk-01", "kiosk/01", "+", "#", "x" * 70, "-lead"])
def test_device_id_rejects_what_could_escape_its_subtree(bad):
    with pytest.raises(TopicError, match="invalid device id"):
        device_topic(bad, Topic.STATE)


def test_parse_topic_names_the_foreign_topic():
    with pytest.raises(TopicError, match="tt/v2/dev/a1/state"):
        parse_topic("tt/v2/dev/a1/state")
    with pytest.raises(TopicError, match="unknown leaf 'secrets'"):
        parse_topic("tt/v1/dev/a1/secrets")


def test_acl_patterns_let_devices_write_only_what_they_send():
    lines = acl_patterns()
    assert "pattern write tt/v1/dev/%u/events" in lines
    assert "pattern read tt/v1/dev/%u/commands" in lines
    assert not any("write tt/v1/dev/%u/acks" in line for line in lines)


def test_event_round_trip_keeps_vietnamese_text():
    event = new_event("kiosk-01", 1, "rating", {"label": "Không hài lòng"}, clock_synced=False)
    decoded = decode(Topic.EVENTS, encode(Topic.EVENTS, event))
    assert decoded["data"]["label"] == "Không hài lòng"
    assert decoded["v"] == 1


@pytest.mark.parametrize("payload, reason, words", [
    (b"\xff\xfe", "json", "not JSON"),
    (b"[1, 2]", "json", "JSON object"),
    (b'{"v": 2, "ids": []}', "schema", "schema version 2"),
    (b'{"ids": []}', "schema", "schema version None"),
    (b'{"v": 1}', "field", "lacks field 'ids'"),
    (b'{"v": 1, "ids": [1]}', "field", "ack ids must be strings"),
])
def test_decode_names_what_was_wrong(payload, reason, words):
    with pytest.raises(MessageError, match=words) as info:
        decode(Topic.ACKS, payload)
    assert info.value.reason == reason


def test_decode_refuses_oversized_payload_before_parsing():
    with pytest.raises(MessageError, match="over the 65536-byte limit"):
        decode(Topic.ACKS, b" " * (MAX_PAYLOAD_BYTES + 1))


def test_encode_refuses_oversized_event():
    event = new_event("kiosk-01", 1, "note", {"text": "x" * MAX_PAYLOAD_BYTES}, clock_synced=True)
    with pytest.raises(MessageError, match="limit"):
        encode(Topic.EVENTS, event)


def test_event_fields_are_type_checked():
    event = new_event("kiosk-01", 1, "rating", {}, clock_synced=True)
    for field, value, words in [("seq", True, "expected integer"), ("seq", 0, ">= 1"),
                                ("id", "not-a-uuid", "not a UUID"),
                                ("ts", "yesterday", "invalid timestamp"),
                                ("clock_synced", 1, "expected boolean")]:
        with pytest.raises(MessageError, match=words):
            decode(Topic.EVENTS, json.dumps({"v": 1, **event, field: value}).encode())


def test_command_needs_a_valid_expiry():
    body = {"v": 1, "id": "c1", "name": "restart", "args": {}, "expires": "soon"}
    with pytest.raises(MessageError, match="invalid timestamp 'soon'"):
        decode(Topic.COMMANDS, json.dumps(body).encode())


def test_state_mqtt_protocol_is_a_known_level():
    birth = {"status": "online", "role": "kiosk", "mqtt_protocol": 4}
    assert decode(Topic.STATE, encode(Topic.STATE, birth))["mqtt_protocol"] == 4
    for value, words in [(6, "mqtt_protocol 6"), ("5", "expected integer"),
                         (True, "expected integer")]:
        with pytest.raises(MessageError, match=words):
            decode(Topic.STATE, json.dumps({"v": 1, **birth, "mqtt_protocol": value}).encode())


@pytest.mark.parametrize("field, value", [("seq", 2**63), ("seq", 10**30)])
def test_event_integers_outside_64_bits_are_refused(field, value):
    """Regression: a seq above 2^63 passed validation and then could not be stored."""
    event = new_event("kiosk-1", 1, "rating", {"level": 1, "scale": 4}, clock_synced=True)
    event[field] = value
    with pytest.raises(MessageError, match="64-bit"):
        decode(Topic.EVENTS, json.dumps({"v": 1, **event}).encode())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_in_or_out(constant):
    event = new_event("kiosk-1", 1, "rating", {"level": 1, "scale": 4}, clock_synced=True)
    text = json.dumps({"v": 1, **event}).replace('"level": 1', f'"level": {constant}')
    with pytest.raises(MessageError, match="not JSON"):
        decode(Topic.EVENTS, text.encode())
    event["data"]["level"] = float(constant.replace("Infinity", "inf"))
    with pytest.raises(MessageError, match="NaN or Infinity"):
        encode(Topic.EVENTS, event)
