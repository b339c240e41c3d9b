"""The speaker node's own settings and pushed schedules: refused with clear errors."""

from __future__ import annotations

import re

import pytest

from conftest import node_config
from node_runtime.errors import ConfigError
from node_runtime.node import Node
from speaker_node.cli import build
from speaker_node.errors import ScheduleError
from speaker_node.timeline import parse_schedule

SHA = "a" * 64


def item(**changes):
    return {"id": "1@20261201T000000Z", "broadcast": 1, "start": "2026-12-01T00:00:00.000Z",
            "level": "normal", "sha256": SHA, "bytes": 10, "duration_s": 1.0, **changes}


def test_speaker_settings_unknown_key_or_short_relay_lead_are_refused(tmp_path, broker):
    for settings, message in (({"relay_pinn": 17}, "unknown [speaker] setting(s) ['relay_pinn']"),
                              ({"amp_lead_s": 0.2}, "at least 1 s before sound")):
        node = Node(node_config(tmp_path, broker, "spk-conf-1", role="speaker",
                                role_settings=settings))
        try:
            with pytest.raises(ConfigError, match=re.escape(message)):
                build(node)
        finally:
            node.close()


@pytest.mark.parametrize("section, message", [
    ({"volume": 2}, "volume 2"),
    ({"tz": "Mars/Olympus"}, "time zone 'Mars/Olympus'"),
    ({"quiet_hours": ["late"]}, "quiet_hours"),
    ({"items": [item(level="urgent")]}, "level 'urgent'"),
    ({"items": [item(sha256="abc")]}, "sha256 'abc'"),
    ({"items": [item(start="tomorrow")]}, "malformed"),
])
def test_pushed_schedule_with_bad_values_is_refused_naming_them(section, message):
    with pytest.raises(ScheduleError, match=re.escape(message)):
        parse_schedule(section)


def test_pushed_schedule_orders_items_by_start_then_level():
    schedule = parse_schedule({"items": [
        item(id="2@x", start="2026-12-01T01:00:00.000Z"),
        item(id="3@x", level="emergency"), item(id="1@x")]})
    assert [o.id for o in schedule.items] == ["3@x", "1@x", "2@x"]
