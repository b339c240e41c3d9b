"""The camera role on a real node, broker and controller: its key and chain heads reach the
controller, holds arrive as commands, are kept across a restart and protect footage
from retention, and their state comes back.

Frames are drawn and encoded with PyAV (libx264) in real time, small and short, so each
test records a few seconds of real segments.
"""

from __future__ import annotations

import datetime as dt
import json
import tarfile
import time

import pytest
from cut_proxy import CutProxy
from test_documents import Api, on_duty

from camera_node import verify_cli
from camera_node.cli import build
from camera_node.holds import Holds
from conftest import wait_for
from kiosk.settings import parse_settings
from kiosk.terminal import Terminal
from wire.camera import (
    CMD_HOLD,
    CMD_RELEASE,
    EVENT_CAMERA_KEY,
    EVENT_FOOTAGE_HEAD,
    EVENT_HOLD_STATE,
    HOLD_AFTER_S,
    HOLD_BEFORE_S,
    HOLD_HELD,
    HOLD_MISSING,
    HOLD_RELEASED,
    HOLD_WAITING,
)
from wire.footage import verify

SMALL = {"source": "synthetic", "width": 320, "height": 240, "fps": 10, "bitrate": 200_000,
         "keyframe_interval_s": 0.5, "segment_s": 1.0, "min_free_mb": 1.0}


@pytest.fixture
def cameras():
    """Every camera a test builds is closed after it, before its node (its recorder would
    go on encoding); list it after ``make_node``."""
    built: list = []
    yield built
    for camera in built:
        camera.close()


def camera_node(make_node, controller, built: list, device_id: str, **settings):
    node = make_node(device_id, controller=controller, role="camera", start=False,
                     role_settings={**SMALL, "controller_url": controller.api_url, **settings})
    camera = build(node)
    built.append(camera)
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


def test_camera_reports_its_key_and_every_segments_chain_head(controller, make_node, cameras):
    node, camera = camera_node(make_node, controller, cameras, "cam-k1")
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


def test_a_hold_is_waiting_then_held_and_survives_a_restart(controller, make_node, tmp_path,
                                                            cameras):
    api = Api(controller)
    node, camera = camera_node(make_node, controller, cameras, "cam-h1")
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


def test_held_footage_outlives_retention_and_a_released_hold_lets_it_go(controller, make_node,
                                                                        cameras):
    api = Api(controller)
    node, camera = camera_node(make_node, controller, cameras, "cam-r1")
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
def test_a_bad_hold_is_rejected_with_the_reason(controller, make_node, args, expected, cameras):
    api = Api(controller)
    camera_node(make_node, controller, cameras, "cam-b1")
    done = command(api, "cam-b1", CMD_HOLD, **args)
    assert done["status"] == "failed" and expected in done["reason"], done


def test_a_dissatisfied_citizen_at_a_desk_gets_its_footage_held_and_clipped(
        controller, make_node, tmp_path, cameras):
    """End to end: the kiosk's own terminal code rates 'not satisfied' through the broker;
    the controller holds the desk camera's footage from 10 minutes before to 1 minute after;
    a leader asks for the clip; the upload is cut halfway and resumes; the controller
    verifies it, and so does ``thanthien-camera verify`` on the exported archive, which
    rejects it after one byte is changed."""
    api = Api(controller)
    port = int(controller.api_url.rsplit(":", 1)[1])
    proxy = CutProxy(("127.0.0.1", port))
    node, camera = camera_node(make_node, controller, cameras, "cam-e1",
                               controller_url=f"http://127.0.0.1:{proxy.port}")
    kiosk = make_node("kiosk-e1", controller=controller)
    terminal = Terminal(kiosk.emit, kiosk.device_id, parse_settings({"misuse_window_s": 0}))
    on_duty(api, "kiosk-e1", "lan", "Nguyễn Thị Lan", "quay-e1", "Quầy 1")
    api("PUT", "/api/v1/desks/quay-e1/cameras", {"cameras": ["cam-e1"]})
    wait_for(lambda: len(camera.store.segments()) >= 3, timeout=30)

    terminal.press(1, "touch")  # satisfied: nothing held
    terminal.press(4, "touch")
    rating = wait_for(lambda: next((r for r in api("GET", "/api/v1/ratings", device="kiosk-e1")
                                    if r["level"] == 4), None))
    hold = wait_for(lambda: next(iter(api("GET", "/api/v1/camera/holds", camera="cam-e1")),
                                 None))
    assert len(api("GET", "/api/v1/camera/holds", camera="cam-e1")) == 1
    ts = dt.datetime.fromisoformat(rating["ts"].replace("Z", "+00:00")).timestamp()
    assert (hold["desk"], hold["rating_id"]) == ("quay-e1", rating["id"])
    assert hold["start"] == pytest.approx(ts - HOLD_BEFORE_S)
    assert hold["end"] == pytest.approx(ts + HOLD_AFTER_S)
    # The camera keeps what it has of those minutes (it started seconds ago) once the
    # minute after the rating is recorded; 'waiting' until then.
    assert wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"]
                    in (HOLD_WAITING, HOLD_HELD), timeout=30)
    held = wait_for(lambda: (h := api("GET", f"/api/v1/camera/holds/{hold['id']}"))["state"]
                    == HOLD_HELD and h, timeout=HOLD_AFTER_S + 30)
    assert held["segments"] >= 60 and held["bytes"] > 0

    proxy.cut_after = proxy.sent + held["bytes"] // 2  # the link drops halfway through
    api("POST", f"/api/v1/camera/holds/{hold['id']}/clip")
    clip = wait_for(lambda: (c := api("GET", f"/api/v1/camera/clips/{hold['id']}"))["state"]
                    in ("verified", "failed") and c, timeout=120)
    assert clip["state"] == "verified", clip
    assert proxy.cuts == 1
    archive = tmp_path / "clip.tar"
    archive.write_bytes(api.raw("GET", f"/api/v1/camera/clips/{hold['id']}/archive.tar").content)
    assert verify_cli.main([str(archive), "--public-key", camera.public_key]) == 0
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".ts")]
        assert len(members) == held["segments"]
    data = bytearray(archive.read_bytes())
    offset = tarfile.open(archive).getmember(members[3].name).offset_data + 1000
    data[offset] ^= 0x01
    archive.write_bytes(bytes(data))
    result = verify(archive)
    assert not result.ok and members[3].name.split("/")[-1] in result.problems[0]
    assert verify_cli.main([str(archive)]) == 1
    proxy.close()
