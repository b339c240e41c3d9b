"""The camera role on a real node, broker and controller: its key and chain heads reach the
controller, holds arrive as commands, are kept across a restart and protect footage
from retention, and their state comes back.

Frames are drawn and encoded with PyAV (libx264) in real time, small and short, so each
test records a few seconds of real segments.
"""

from __future__ import annotations

import json
import time

import pytest
from test_documents import Api

from camera_node.cli import build
from camera_node.holds import Holds
from conftest import wait_for
from wire.camera import (
    CMD_HOLD,
    CMD_RELEASE,
    EVENT_CAMERA_KEY,
    EVENT_FOOTAGE_HEAD,
    EVENT_HOLD_STATE,
    HOLD_HELD,
    HOLD_MISSING,
    HOLD_RELEASED,
    HOLD_WAITING,
)
from wire.footage import verify

SMALL = {"source": "synthetic", "width": 320, "height": 240, "fps": 10, "bitrate": 200_000,
         "keyframe_interval_s": 0.5, "segment_s": 1.0, "min_free_mb": 1.0}


def camera_node(make_node, controller, device_id: str, **settings):
    node = make_node(device_id, controller=controller, role="camera", start=False,
                     role_settings={**SMALL, "controller_url": controller.api_url, **settings})
    camera = build(node)
    node.start()
    return node, camera


def events(controller, device_id: str, type_: str) -> list[dict]:
    rows = controller.reader().execute(
        "SELECT data FROM events WHERE device = ? AND type = ? ORDER BY received",
        (device_id, type_)).fetchall()
    return [json.loads(r[0]) for r in rows]


def command(api: Api, device_id: str, name: str, **args) -> dict:
    sent = api("POST", f"/api/v1/devices/{device_id}/commands", {"name": name, "args": args})
    return wait_for(lambda: (c := api("GET", f"/api/v1/commands/{sent['id']}"))["status"]
                    in ("done", "failed", "unknown") and c, timeout=20)


def test_camera_reports_its_key_and_every_segments_chain_head(controller, make_node):
    node, camera = camera_node(make_node, controller, "cam-k1")
    wait_for(lambda: len(events(controller, "cam-k1", EVENT_FOOTAGE_HEAD)) >= 3, timeout=30)
    key = events(controller, "cam-k1", EVENT_CAMERA_KEY)
    assert key == [{"public_key": camera.public_key}]
    heads = events(controller, "cam-k1", EVENT_FOOTAGE_HEAD)
    seqs = [h["seq"] for h in heads]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one per segment, in order
    stored = {s.seq: s for s in camera.store.segments()}
    for head in heads:
        if head["seq"] in stored:
            assert head["chain"] == stored[head["seq"]].chain
            assert head["sha256"] == stored[head["seq"]].sha256
    telemetry = node.telemetry()["camera"]
    assert telemetry["recording"] is True and telemetry["reason"] is None
    assert telemetry["segments"] >= 3 and telemetry["bytes"] > 0 and telemetry["fps"] > 0


def test_a_hold_is_waiting_then_held_and_survives_a_restart(controller, make_node, tmp_path):
    api = Api(controller)
    node, camera = camera_node(make_node, controller, "cam-h1")
    wait_for(lambda: len(camera.store.segments()) >= 2, timeout=30)
    now = time.time()
    done = command(api, "cam-h1", CMD_HOLD, hold="h-1", start=now - 2, end=now + 2,
                   expires=now + 3600, reason="test")
    assert done["status"] == "done", done
    assert done["result"]["state"] == HOLD_WAITING  # its end is still being recorded
    wait_for(lambda: any(e["hold"] == "h-1" and e["state"] == HOLD_HELD
                         for e in events(controller, "cam-h1", EVENT_HOLD_STATE)), timeout=30)
    held = [e for e in events(controller, "cam-h1", EVENT_HOLD_STATE)
            if e["state"] == HOLD_HELD][-1]
    covered = camera.store.between(now - 2, now + 2)
    assert held["segments"] == len(covered) >= 3
    assert held["bytes"] == sum(s.size for s in covered)
    assert all(camera.protects(s) for s in covered)

    # Footage from before the recording started cannot be held: reported missing.
    gone = command(api, "cam-h1", CMD_HOLD, hold="h-0", start=now - 7200, end=now - 7000,
                   expires=now + 3600, reason="too old")
    assert gone["result"]["state"] == HOLD_MISSING

    data = node.config.data_dir
    camera.close()
    node.close()
    with Holds(data / "holds.db") as holds:  # kept on the device across the restart
        assert holds.get("h-1")["state"] == HOLD_HELD
        assert holds.protects(now - 1, now)
    assert verify(data / "footage").ok


def test_held_footage_outlives_retention_and_a_released_hold_lets_it_go(controller, make_node):
    api = Api(controller)
    node, camera = camera_node(make_node, controller, "cam-r1")
    wait_for(lambda: len(camera.store.segments()) >= 3, timeout=30)
    first = camera.store.segments()[0]
    command(api, "cam-r1", CMD_HOLD, hold="keep", start=first.start, end=first.end,
            expires=time.time() + 3600, reason="complaint")
    camera.recorder.retention.max_age_s = 1.0  # everything older than a second goes...
    wait_for(lambda: len(camera.store.segments()) <= 4 and
             camera.store.segments()[0].seq == first.seq, timeout=30)
    assert first.seq in {s.seq for s in camera.store.segments()}  # ...but the held one
    released = command(api, "cam-r1", CMD_RELEASE, hold="keep")
    assert released["result"]["state"] == HOLD_RELEASED
    wait_for(lambda: first.seq not in {s.seq for s in camera.store.segments()}, timeout=30)
    assert verify(node.config.data_dir / "footage").ok  # retired, not missing


@pytest.mark.parametrize("args, expected", [
    ({"hold": "x", "start": 10, "end": 5, "expires": 2e9}, "expected start < end"),
    ({"hold": "", "start": 1, "end": 5}, "'hold'"),
    ({"hold": "x", "start": "noon", "end": 5}, "'start' 'noon'"),
])
def test_a_bad_hold_is_rejected_with_the_reason(controller, make_node, args, expected):
    api = Api(controller)
    camera_node(make_node, controller, "cam-b1")
    done = command(api, "cam-b1", CMD_HOLD, **args)
    assert done["status"] == "failed" and expected in done["reason"], done
