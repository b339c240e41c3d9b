"""A clip's way to the controller: from a leader's request to the clip verified.

Real parts: Mosquitto, the controller (HTTP on the loopback), a camera node with
the real role. The camera's store is first filled with ten minutes of 1080p30
footage at 4 Mbit/s (one minute encoded with libx264, its frames fed again with
later timestamps, through the real segmenter and store: 60 s segments, each
hashed and signed); a leader holds those ten minutes and asks for the clip. The
figure is the time from ``POST /camera/holds/{id}/clip`` to the clip
``verified``: the command to the camera, the upload (unthrottled: the loopback),
the controller's check of every hash, signature and chain head, the MP4 remux
and the archive. The baseline, measured in the same run, is copying the same
files on this disk and hashing them once: the least any verified transfer does.
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import tempfile
import time
from typing import Any

import requests

from bench.camera import encode
from camera_node import keys
from camera_node.cli import build
from camera_node.frames import EncodedFrame
from camera_node.segments import Segmenter
from camera_node.store import SegmentStore
from controller.access import tokens
from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port
from node_runtime.config import MqttSettings, NodeConfig
from node_runtime.node import Node

PASSWORD = "bench-password-0123456789"
FPS = 30


def fill(footage: pathlib.Path, key_file: pathlib.Path, frames: list[EncodedFrame],
         seconds: int, start: float) -> None:
    """``seconds`` of footage from ``start`` (wall clock), ``frames`` repeated."""
    store = SegmentStore(footage, keys.load_or_create_key(key_file))
    segmenter = Segmenter(store, segment_s=60.0)
    step = round(1_000_000 / FPS)
    for i in range(seconds * FPS):
        frame = frames[i % len(frames)]
        segmenter.outputframe(EncodedFrame(frame.data, frame.keyframe, i * step,
                                           start + i / FPS))
    segmenter.close()
    store.close()


def clip_seconds(folder: pathlib.Path, frames: list[EncodedFrame], minutes: int
                 ) -> dict[str, Any]:
    broker_config = BrokerConfig(folder / "broker", port=free_port())
    for user in (CONTROLLER_USER, "bench-cam"):
        broker_config.set_user(user, PASSWORD)
    broker = Mosquitto(broker_config)
    broker.start()

    def mqtt(user: str) -> MqttSettings:
        return MqttSettings(port=broker_config.port, username=user, password=PASSWORD,
                            keepalive=30, reconnect_min=0.2, reconnect_max=2.0)

    from controller.service import Controller
    ctl = Controller(folder / "controller.db", mqtt(CONTROLLER_USER), http_port=0,
                     broker_passwd=broker_config.passwd)
    node = camera = None
    try:
        ctl.start()
        token = ctl.writer.call(lambda db: tokens.create_token(db, "bench"))
        headers = {"Authorization": f"Bearer {token}"}
        ctl.registry.add("bench-cam", "camera")
        data = folder / "camera"
        now = time.time()
        fill(data / "footage", data / "camera.key", frames, minutes * 60 + 60,
             now - minutes * 60 - 120)
        node = Node(NodeConfig(
            device_id="bench-cam", role="camera", data_dir=data, mqtt=mqtt("bench-cam"),
            clock_check="always", telemetry_interval=600, status_port=0,
            role_settings={"source": "synthetic", "width": 320, "height": 240, "fps": 5,
                           "bitrate": 100_000, "controller_url": ctl.api_url,
                           "upload_kbps": 10_000_000.0, "min_free_mb": 1.0}))
        camera = build(node)
        node.start()
        api = ctl.api_url + "/api/v1/camera"
        hold = requests.post(api + "/holds", headers=headers, timeout=30, json={
            "camera": "bench-cam", "start": now - minutes * 60 - 90, "end": now - 90,
            "reason": "benchmark"}).json()[0]
        deadline = time.monotonic() + 60
        while requests.get(f"{api}/holds/{hold['id']}", headers=headers,
                           timeout=30).json()["state"] != "held":
            if time.monotonic() > deadline:
                raise RuntimeError("the camera did not hold the footage")
            time.sleep(0.2)
        t0 = time.monotonic()
        asked = requests.post(f"{api}/holds/{hold['id']}/clip", headers=headers, timeout=30)
        asked.raise_for_status()
        while (clip := requests.get(f"{api}/clips/{hold['id']}", headers=headers,
                                    timeout=30).json())["state"] not in ("verified", "failed"):
            if time.monotonic() - t0 > 900:
                raise RuntimeError(f"clip not verified in 15 minutes: {clip}")
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        if clip["state"] != "verified":
            raise RuntimeError(f"clip failed: {clip}")
        files = [s.path for s in camera.store.between(hold["start"], hold["end"])]
        return {"seconds": elapsed, "bytes": sum(f.stat().st_size for f in files),
                "segments": len(files), "baseline": copy_and_hash(files, folder / "copy")}
    finally:
        if camera is not None:
            camera.close()
        if node is not None:
            node.close()
        ctl.close()
        broker.stop()


def copy_and_hash(files: list[pathlib.Path], dest: pathlib.Path) -> float:
    """Seconds to copy ``files`` to ``dest`` and hash each copy once."""
    dest.mkdir()
    t0 = time.monotonic()
    for path in files:
        copy = dest / path.name
        shutil.copyfile(path, copy)
        with copy.open("rb") as f:
            hashlib.file_digest(f, "sha256")
    return time.monotonic() - t0


def run(quick: bool = False) -> list[tuple[str, float, str, str, str]]:
    minutes = 2 if quick else 10
    frames, _ = encode(10 if quick else 60)
    with tempfile.TemporaryDirectory(prefix="bench-clip-") as tmp:
        result = clip_seconds(pathlib.Path(tmp), frames, minutes)
    mb = result["bytes"] / 1e6
    note = (f"{minutes}-minute hold, {result['segments']} segments, {mb:.0f} MB of 1080p30 "
            "over the loopback, unthrottled")
    return [
        (f"camera_clip_{minutes}min_verified_s", round(result["seconds"], 1), "s", "-",
         note + "; from the request to verified (upload, hashes, signatures, chain heads, "
         "MP4 remux, archive)"),
        ("camera_clip_vs_copy_and_hash", round(result["seconds"] / result["baseline"], 1),
         "x", "-", f"baseline: copying and hashing the same files on this disk took "
         f"{result['baseline']:.1f} s"),
    ]


def main() -> None:
    for row in run():
        print(f"BENCH {row[0]} {row[1]} {row[2]}  # {row[4]}")


if __name__ == "__main__":
    main()
