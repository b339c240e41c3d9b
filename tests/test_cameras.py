"""The desk cameras on the controller's side, over a real controller, broker and HTTP: holds
made by dissatisfied ratings and by hand, their state reported back by a camera node,
clips uploaded (resumable after a cut), verified against the pinned key and the chain
heads, watched and downloaded by leaders only and each time written in the audit log.

The footage is real: H.264 drawn and encoded with PyAV (libx264) into MPEG-TS segments,
with a manifest chained and signed by the rules of :mod:`wire.footage`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import fractions
import hashlib
import io
import json
import pathlib
import socket
import subprocess
import tarfile
import time
import urllib.parse
from typing import Any
from zoneinfo import ZoneInfo

import av
import numpy as np
import pytest
import requests
from console_browser import PASSWORD as BROWSER_PASSWORD
from console_browser import Visit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from test_camera_node import SMALL
from test_documents import Api, rate
from test_errors_i18n import PASSWORD, signed_in

from camera_node.cli import build
from conftest import DEVICE_PASSWORD, wait_for
from controller.access import users
from controller.broadcasts.schedule import TIMEZONE
from controller.cameras import holds as holds_module
from controller.documents import commune
from wire.camera import (
    CLIP_DONE_PATH,
    CLIP_MANIFEST_PATH,
    CLIP_SEGMENT_PATH,
    CLIP_UPLOAD_PATH,
    CMD_CLIP,
    CMD_HOLD,
    CMD_RELEASE,
    EVENT_CAMERA_KEY,
    EVENT_FOOTAGE_HEAD,
    EVENT_HOLD_STATE,
    HOLD_HELD,
    HOLD_RELEASED,
)
from wire.footage import manifest_line, segment_name, sign_entry, verify
from wire.messages import parse_ts

FPS, WIDTH, HEIGHT = 10, 160, 120


# -- real footage ---------------------------------------------------------------------------

def encode_segment(first_frame: int, frames: int = FPS) -> bytes:
    """One second of H.264 in MPEG-TS, starting with a keyframe; timestamps continue from
    ``first_frame`` as a camera's consecutive segments do."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.options = {"g": str(FPS), "bf": "0", "preset": "ultrafast"}
        stream.codec_context.time_base = fractions.Fraction(1, FPS)
        for i in range(frames):
            n = first_frame + i
            image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
            image[:, (n * 7) % WIDTH:] = (40, 120 + n % 100, 200)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = n, fractions.Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


@dataclasses.dataclass
class Footage:
    """A camera's recording: its key, and each segment's bytes and signed manifest entry."""

    key: Ed25519PrivateKey
    entries: list[dict[str, Any]]
    files: dict[int, bytes]

    @property
    def public_key(self) -> str:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def manifest(self) -> bytes:
        return b"".join(manifest_line(e) for e in self.entries)


def record(start: float, seconds: int, *, first_seq: int = 1,
           key: Ed25519PrivateKey | None = None, prev: str = "") -> Footage:
    """``seconds`` one-second segments from ``start``, chained after ``prev`` and signed."""
    key = key or Ed25519PrivateKey.generate()
    entries, files = [], {}
    for i in range(seconds):
        seq, begin = first_seq + i, start + i
        data = encode_segment(i * FPS)
        entry = {"kind": "segment", "seq": seq, "name": segment_name(begin, seq),
                 "start": begin, "end": begin + 1.0, "frames": FPS, "size": len(data),
                 "sha256": hashlib.sha256(data).hexdigest()}
        signed = sign_entry(key, prev, entry)
        prev = signed["chain"]
        entries.append(signed)
        files[seq] = data
    return Footage(key, entries, files)


# -- a camera node stand-in -----------------------------------------------------------------

class StandIn:
    """A real node with the role camera: it takes holds, releases and clip requests as the
    camera does (recording what it was asked) and reports holds with ``hold_state``."""

    def __init__(self, node, *, segments: int = 3, size: int = 30_000):
        self.node, self.segments, self.size = node, segments, size
        self.asked: list[tuple[str, dict[str, Any]]] = []
        node.command(CMD_HOLD, self.hold)
        node.command(CMD_RELEASE, self.release)
        node.command(CMD_CLIP, self.clip)

    def hold(self, args: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((CMD_HOLD, args))
        return self.report(args, HOLD_HELD)

    def release(self, args: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((CMD_RELEASE, args))
        return self.report(args, HOLD_RELEASED)

    def clip(self, args: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((CMD_CLIP, args))
        return {"hold": args["hold"], "queued": True}

    def report(self, args: dict[str, Any], state: str) -> dict[str, Any]:
        summary = {"hold": args["hold"], "state": state, "start": args.get("start", 0),
                   "end": args.get("end", 0), "expires": args.get("expires", 0),
                   "segments": self.segments, "bytes": self.size, "reason": args.get("reason")}
        self.node.emit(EVENT_HOLD_STATE, summary)
        return summary

    def asked_for(self, name: str) -> list[dict[str, Any]]:
        return [args for n, args in self.asked if n == name]

    def tell(self, footage: Footage) -> None:
        """Report the key and every segment's chain head, as the camera does."""
        self.node.emit(EVENT_CAMERA_KEY, {"public_key": footage.public_key})
        for entry in footage.entries:
            self.node.emit(EVENT_FOOTAGE_HEAD, {k: entry[k] for k in (
                "seq", "chain", "sha256", "start", "end")})


def camera(make_node, controller, device_id: str, **options: Any) -> StandIn:
    node = make_node(device_id, controller=controller, role="camera", start=False)
    stand_in = StandIn(node, **options)
    node.start()
    return stand_in


@pytest.fixture
def office(controller, make_node):
    """Two desks, each with a kiosk and a camera; the API as an admin's tool."""
    api = Api(controller)
    kiosks = {desk: make_node(kiosk, controller=controller)
              for desk, kiosk in (("quay-1", "kiosk-c1"), ("quay-2", "kiosk-c2"))}
    cams = {desk: camera(make_node, controller, cam)
            for desk, cam in (("quay-1", "cam-c1"), ("quay-2", "cam-c2"))}
    for desk, kiosk in kiosks.items():
        api("PUT", f"/api/v1/desks/{desk}", {"name": f"Quầy {desk[-1]}",
                                             "kiosk": kiosk.config.device_id})
        api("PUT", f"/api/v1/desks/{desk}/cameras",
            {"cameras": [cams[desk].node.config.device_id]})
    return api, kiosks, cams


def holds(api: Api, **query) -> list[dict[str, Any]]:
    return api("GET", "/api/v1/camera/holds", **query)


# -- holds ----------------------------------------------------------------------------------

def test_a_dissatisfied_rating_holds_its_desks_camera_footage_and_a_satisfied_one_none(
        controller, office):
    api, kiosks, cams = office
    assert {d["id"]: d["cameras"] for d in api("GET", "/api/v1/desks")} == {
        "quay-1": ["cam-c1"], "quay-2": ["cam-c2"]}
    rate(kiosks["quay-1"], 1)  # very satisfied: no hold
    rate(kiosks["quay-1"], 4)  # dissatisfied
    rating = wait_for(lambda: next((r for r in api("GET", "/api/v1/ratings") if r["level"] == 4),
                                   None))
    made = wait_for(lambda: holds(api))
    assert len(made) == 1
    hold = made[0]
    at = parse_ts(rating["ts"]).timestamp()
    assert (hold["camera"], hold["desk"], hold["rating_id"], hold["automatic"]) == (
        "cam-c1", "quay-1", rating["id"], True)
    assert hold["start"] == pytest.approx(at - 600, abs=1)
    assert hold["end"] == pytest.approx(at + 60, abs=1)
    assert hold["expires"] == pytest.approx(time.time() + 90 * 86400, abs=60)
    # The camera got the hold within seconds (it is online), and reported it held.
    sent = wait_for(lambda: cams["quay-1"].asked_for(CMD_HOLD))
    assert sent == [{"hold": hold["id"], "start": hold["start"], "end": hold["end"],
                     "expires": hold["expires"], "reason": "dissatisfied rating"}]
    held = wait_for(lambda: (h := api("GET", f"/api/v1/camera/holds/{hold['id']}"))[
        "state"] == HOLD_HELD and h)
    assert (held["segments"], held["bytes"]) == (3, 30_000)
    commands = api("GET", "/api/v1/devices/cam-c1/commands")
    assert [(c["name"], c["status"]) for c in commands] == [(CMD_HOLD, "done")]
    # The other desk's camera was asked nothing; the satisfied rating made no hold.
    assert cams["quay-2"].asked == [] and len(holds(api)) == 1


def test_misuse_and_a_desk_without_camera_hold_nothing(controller, make_node):
    api = Api(controller)
    kiosk = make_node("kiosk-c3", controller=controller)
    api("PUT", "/api/v1/desks/quay-3", {"name": "Quầy 3", "kiosk": "kiosk-c3"})
    rate(kiosk, 4)
    rate(kiosk, 4, misuse=True)
    wait_for(lambda: len(api("GET", "/api/v1/ratings", include_misuse="true")) == 2)
    assert holds(api) == []


def test_a_released_hold_is_released_on_the_camera(controller, office):
    api, kiosks, cams = office
    now = time.time()
    [hold] = api("POST", "/api/v1/camera/holds", {"camera": "cam-c2", "start": now - 300,
                                                  "end": now - 100, "reason": "phản ánh"})
    assert (hold["state"], hold["desk"], hold["automatic"], hold["created_by"]) == (
        "requested", "quay-2", False, "docs-admin")
    wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == HOLD_HELD)
    released = api("DELETE", f"/api/v1/camera/holds/{hold['id']}")
    assert released["state"] == HOLD_RELEASED
    assert wait_for(lambda: cams["quay-2"].asked_for(CMD_RELEASE)) == [{"hold": hold["id"]}]
    # The camera's own report of the release keeps it released.
    wait_for(lambda: any(c["name"] == CMD_RELEASE and c["status"] == "done"
                         for c in api("GET", "/api/v1/devices/cam-c2/commands")))
    assert api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == HOLD_RELEASED


def test_an_offline_camera_gets_its_hold_when_it_comes_online(controller, make_node):
    api = Api(controller)
    node = make_node("cam-off", controller=controller, role="camera", start=False)
    stand_in = StandIn(node)
    now = time.time()
    [hold] = api("POST", "/api/v1/camera/holds", {"camera": "cam-off", "start": now - 60,
                                                  "end": now, "reason": "kiểm tra"})
    [command] = api("GET", "/api/v1/devices/cam-off/commands")
    assert command["status"] in ("pending", "sent")
    node.start()  # born: open commands are sent again, the hold among them
    assert wait_for(lambda: stand_in.asked_for(CMD_HOLD))[0]["hold"] == hold["id"]
    wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == HOLD_HELD)


@pytest.mark.parametrize("body, words", [
    ({"camera": "cam-c1", "start": -5 * 3600, "end": 0}, "at most 4 h"),
    ({"camera": "cam-c1", "start": -40 * 86400, "end": -40 * 86400 + 60}, "more than 30 days"),
    ({"camera": "cam-c1", "start": 0, "end": -60}, "before it starts"),
    ({"camera": "cam-c1", "start": 2 * 86400 - 60, "end": 2 * 86400}, "at most a day ahead"),
    ({"camera": "cam-c1", "desk": "quay-1", "start": -60, "end": 0}, "either 'camera' or"),
    ({"start": -60, "end": 0}, "either 'camera' or"),
    ({"camera": "kiosk-c1", "start": -60, "end": 0}, "no such camera"),
    ({"camera": "cam-c1", "start": "hôm qua", "end": 0}, "start 'hôm qua'"),
])
def test_a_hold_by_hand_outside_the_bounds_is_refused_naming_what_was_wrong(
        controller, office, body, words):
    api, _, _ = office
    now = time.time()
    sent = {k: (now + v if isinstance(v, int) else v) for k, v in body.items()}
    sent.setdefault("reason", "phản ánh")
    resp = api.raw("POST", "/api/v1/camera/holds", sent)
    assert resp.status_code == 400 and words in resp.json()["error"], resp.text
    assert holds(api) == []


def test_holds_by_hand_are_bounded_in_number_and_a_desk_without_camera_refused(
        controller, office, monkeypatch):
    api, _, _ = office
    monkeypatch.setattr(holds_module, "MAX_ACTIVE", 2)
    now = time.time()
    body = {"start": now - 120, "end": now - 60, "reason": "phản ánh"}
    assert len(api("POST", "/api/v1/camera/holds", {**body, "desk": "quay-1"})) == 1
    assert len(api("POST", "/api/v1/camera/holds", {**body, "camera": "cam-c2"})) == 1
    refused = api.raw("POST", "/api/v1/camera/holds", {**body, "camera": "cam-c2"})
    assert refused.status_code == 400 and "2 holds by hand are active, at most 2" in refused.text
    api("PUT", "/api/v1/desks/quay-9", {"name": "Quầy 9"})
    none = api.raw("POST", "/api/v1/camera/holds", {**body, "desk": "quay-9"})
    assert none.status_code == 400 and "has no camera" in none.text


def test_only_approved_cameras_watch_desks_and_only_cameras_report_holds(controller, office):
    api, kiosks, _ = office
    bad = api.raw("PUT", "/api/v1/desks/quay-1/cameras", {"cameras": ["kiosk-c2"]})
    assert bad.status_code == 400 and "role camera" in bad.text
    kiosks["quay-1"].emit(EVENT_HOLD_STATE, {"hold": "x", "state": HOLD_HELD})
    refusal = wait_for(lambda: [q for q in api("GET", "/api/v1/events/quarantine")
                                if q["type"] == EVENT_HOLD_STATE])
    assert "a kiosk may not file hold_state events" in refusal[0]["reason"]


# -- keys and chain heads ---------------------------------------------------------------------

def test_a_cameras_first_key_is_pinned_another_is_alerted_until_a_technician_accepts_it(
        controller, office):
    api, _, cams = office
    first, second = record(time.time() - 10, 1), record(time.time() - 5, 1)
    cams["quay-1"].node.emit(EVENT_CAMERA_KEY, {"public_key": first.public_key})
    wait_for(lambda: _camera(api, "cam-c1")["public_key"] == first.public_key)
    cams["quay-1"].node.emit(EVENT_CAMERA_KEY, {"public_key": second.public_key})
    alert = wait_for(lambda: [a for a in api("GET", "/api/v1/alerts")
                              if a["kind"] == "camera_key"])
    assert alert[0]["desk"] == "cam-c1" and "new signing key" in alert[0]["detail"]
    listed = _camera(api, "cam-c1")
    assert (listed["public_key"], listed["new_keys"]) == (first.public_key, [second.public_key])
    leader = Api(controller, "leader")
    assert leader.raw("POST", "/api/v1/camera/cameras/cam-c1/key",
                      {"public_key": second.public_key}).status_code == 403
    technician = Api(controller, "technician")
    technician("POST", "/api/v1/camera/cameras/cam-c1/key", {"public_key": second.public_key})
    listed = _camera(api, "cam-c1")
    assert (listed["public_key"], listed["new_keys"]) == (second.public_key, [first.public_key])


def _camera(api: Api, device_id: str) -> dict[str, Any]:
    return next(c for c in api("GET", "/api/v1/camera/cameras") if c["id"] == device_id)


def test_a_rewritten_or_missing_chain_head_is_alerted(controller, office):
    api, _, cams = office
    footage = record(time.time() - 10, 4)
    stand_in = cams["quay-2"]
    for entry in footage.entries[:1] + footage.entries[2:]:  # seq 2 never arrives
        stand_in.node.emit(EVENT_FOOTAGE_HEAD, {k: entry[k] for k in (
            "seq", "chain", "sha256", "start", "end")})
    wait_for(lambda: _camera(api, "cam-c2")["last_seq"] == 4)
    controller.cameras.sweep(gap_grace_s=0)
    gap = [a for a in api("GET", "/api/v1/alerts") if a["kind"] == "footage_chain"]
    assert len(gap) == 1 and "no chain head for seqs 2" in gap[0]["detail"]
    controller.cameras.sweep(gap_grace_s=0)  # each head is looked at once
    rewritten = dict(footage.entries[0], chain="ab" * 32)
    stand_in.node.emit(EVENT_FOOTAGE_HEAD, {k: rewritten[k] for k in (
        "seq", "chain", "sha256", "start", "end")})
    alerts = wait_for(lambda: len(found := [a for a in api("GET", "/api/v1/alerts")
                                            if a["kind"] == "footage_chain"]) == 2 and found)
    assert "seq 1 reported again with another chain" in alerts[0]["detail"]


# -- clips ------------------------------------------------------------------------------------

class CameraHttp:
    """The camera's side of the upload routes, with its broker credentials."""

    def __init__(self, controller, device_id: str):
        self.url, self.auth = controller.api_url, (device_id, DEVICE_PASSWORD)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, auth=self.auth, timeout=60, **kwargs)

    def upload(self, hold_id: str, footage: Footage, *, skip: tuple[int, ...] = ()) -> dict:
        got = self.request("PUT", CLIP_MANIFEST_PATH.format(hold=hold_id),
                           data=footage.manifest(),
                           headers={"X-Camera-Key": footage.public_key})
        assert got.status_code == 200, got.text
        for seq, data in footage.files.items():
            if seq not in skip:
                put = self.request("PUT", CLIP_SEGMENT_PATH.format(hold=hold_id, seq=seq),
                                   data=data)
                assert put.status_code == 200 and put.json()["complete"], put.text
        done = self.request("POST", CLIP_DONE_PATH.format(hold=hold_id))
        assert done.status_code == 200, done.text
        return dict(done.json())

    def cut_short(self, hold_id: str, seq: int, data: bytes, sent: int) -> None:
        """Start a segment's upload and drop the connection after ``sent`` bytes."""
        url = urllib.parse.urlsplit(self.url)
        credentials = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        path = CLIP_SEGMENT_PATH.format(hold=hold_id, seq=seq)
        head = (f"PUT {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Authorization: Basic {credentials}\r\nContent-Length: {len(data)}\r\n"
                f"Content-Range: bytes 0-{len(data) - 1}/{len(data)}\r\n\r\n").encode()
        with socket.create_connection((url.hostname, url.port), timeout=10) as s:
            s.sendall(head + data[:sent])
            time.sleep(0.5)


def held_clip(api: Api, controller, stand_in: StandIn, footage: Footage) -> dict[str, Any]:
    """A hold over ``footage`` on the stand-in's camera, held, its clip asked for; the camera
    has reported its key and chain heads."""
    stand_in.tell(footage)
    device_id = stand_in.node.config.device_id
    wait_for(lambda: _camera(api, device_id)["last_seq"] == footage.entries[-1]["seq"])
    start, end = footage.entries[0]["start"], footage.entries[-1]["end"]
    [hold] = api("POST", "/api/v1/camera/holds", {"camera": device_id, "start": start,
                                                  "end": end, "reason": "phản ánh số 7"})
    wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == HOLD_HELD)
    clip = api("POST", f"/api/v1/camera/holds/{hold['id']}/clip")
    assert clip["state"] == "requested"
    assert wait_for(lambda: stand_in.asked_for(CMD_CLIP))[-1] == {"hold": hold["id"]}
    return hold


def ffprobe(path: pathlib.Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_name,nb_frames:format=duration,format_name", "-of",
                          "json", str(path)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def test_a_clip_is_uploaded_resumed_after_a_cut_verified_and_played(
        controller, office, tmp_path):
    api, _, cams = office
    footage = record(time.time() - 30, 3, first_seq=41)
    hold = held_clip(api, controller, cams["quay-1"], footage)
    cam = CameraHttp(controller, "cam-c1")
    status = cam.request("GET", CLIP_UPLOAD_PATH.format(hold=hold["id"]))
    assert status.json() == {"manifest": False, "segments": {}}
    assert cam.request("PUT", CLIP_MANIFEST_PATH.format(hold=hold["id"]),
                       data=footage.manifest(),
                       headers={"X-Camera-Key": footage.public_key}).status_code == 200
    # Segment 41 in two parts, the link cut in between.
    data = footage.files[41]
    cam.cut_short(hold["id"], 41, data, 5000)
    have = wait_for(lambda: cam.request("GET", CLIP_UPLOAD_PATH.format(
        hold=hold["id"])).json()["segments"]["41"] == 5000 and 5000)
    path = CLIP_SEGMENT_PATH.format(hold=hold["id"], seq=41)
    wrong = cam.request("PUT", path, data=data,
                        headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"})
    assert wrong.status_code == 416 and wrong.json()["received"] == have
    assert "5000 bytes received" in wrong.json()["error"]
    rest = cam.request("PUT", path, data=iter([data[have:have + 4000], data[have + 4000:]]),
                       headers={"Content-Range": f"bytes {have}-{len(data) - 1}/{len(data)}"})
    assert rest.json() == {"seq": 41, "received": len(data), "complete": True}
    clip = cam.upload(hold["id"], footage, skip=(41,))
    assert (clip["state"], clip["problems"], clip["segments"], clip["video"]) == (
        "verified", [], 3, True)

    leader = Api(controller, "leader")
    video = leader.raw("GET", f"/api/v1/camera/clips/{hold['id']}/video.mp4")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    seek = requests.get(leader.url + f"/api/v1/camera/clips/{hold['id']}/video.mp4",
                        headers={**leader.headers, "Range": "bytes=100-199"}, timeout=10)
    assert seek.status_code == 206 and seek.content == video.content[100:200]
    (tmp_path / "clip.mp4").write_bytes(video.content)
    probe = ffprobe(tmp_path / "clip.mp4")
    assert probe["streams"] == [{"codec_name": "h264", "nb_frames": str(3 * FPS)}]
    assert float(probe["format"]["duration"]) == pytest.approx(3.0, abs=0.15)

    archive = leader.raw("GET", f"/api/v1/camera/clips/{hold['id']}/archive.tar")
    assert archive.status_code == 200
    assert f'filename="clip-{hold["id"]}.tar"' in archive.headers["content-disposition"]
    (tmp_path / "clip.tar").write_bytes(archive.content)
    with tarfile.open(tmp_path / "clip.tar") as tar:
        names = sorted(tar.getnames())
        note = tar.extractfile(f"clip-{hold['id']}/VERIFY.txt").read().decode()
    top = f"clip-{hold['id']}"
    assert names == sorted([f"{top}/manifest.jsonl", f"{top}/camera.pub", f"{top}/VERIFY.txt",
                            *(f"{top}/{e['name']}" for e in footage.entries)])
    assert f"thanthien-camera verify clip-{hold['id']}.tar" in note
    assert "Để tự kiểm tra lại" in note and "To check this file yourself" in note
    checked = verify(tmp_path / "clip.tar", public_key_hex=footage.public_key)
    assert checked.ok and checked.segments == 3, checked.problems


def test_one_byte_altered_in_a_segment_fails_the_clip_naming_the_segment(controller, office):
    api, _, cams = office
    footage = record(time.time() - 30, 3, first_seq=7)
    hold = held_clip(api, controller, cams["quay-2"], footage)
    altered = bytearray(footage.files[8])
    altered[len(altered) // 2] ^= 0x01
    sent = Footage(footage.key, footage.entries, {**footage.files, 8: bytes(altered)})
    clip = CameraHttp(controller, "cam-c2").upload(hold["id"], sent)
    assert clip["state"] == "failed"
    assert clip["problems"][0].startswith(f"{footage.entries[1]['name']} (seq 8): altered")
    leader = Api(controller, "leader")
    assert leader.raw("GET", f"/api/v1/camera/clips/{hold['id']}/video.mp4").status_code == 404
    # Asked for again, the camera sends it afresh.
    again = leader("POST", f"/api/v1/camera/holds/{hold['id']}/clip")
    assert (again["state"], again["problems"]) == ("requested", [])
    assert CameraHttp(controller, "cam-c2").upload(hold["id"], footage)["state"] == "verified"


def test_a_clip_signed_with_another_key_or_missing_a_head_fails(controller, office):
    api, _, cams = office
    footage = record(time.time() - 30, 2, first_seq=3)
    hold = held_clip(api, controller, cams["quay-1"], footage)
    forged = record(footage.entries[0]["start"], 2, first_seq=3)  # rebuilt with a new key
    clip = CameraHttp(controller, "cam-c1").upload(hold["id"], forged)
    assert clip["state"] == "failed"
    assert "signed with another key" in clip["problems"][0]


def test_uploads_are_only_for_the_holds_camera_and_a_clip_asked_for(controller, office):
    api, _, cams = office
    footage = record(time.time() - 30, 1, first_seq=1)
    hold = held_clip(api, controller, cams["quay-1"], footage)
    other = CameraHttp(controller, "cam-c2").request(
        "PUT", CLIP_MANIFEST_PATH.format(hold=hold["id"]), data=footage.manifest(),
        headers={"X-Camera-Key": footage.public_key})
    assert other.status_code == 403 and "cam-c1" in other.json()["error"]
    wrong = requests.get(controller.api_url + CLIP_UPLOAD_PATH.format(hold=hold["id"]),
                         auth=("cam-c1", "wrong-password"), timeout=10)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    outside = dict(footage.entries[0], start=footage.entries[0]["start"] - 7200,
                   end=footage.entries[0]["start"] - 7199)
    refused = CameraHttp(controller, "cam-c1").request(
        "PUT", CLIP_MANIFEST_PATH.format(hold=hold["id"]), data=manifest_line(outside),
        headers={"X-Camera-Key": footage.public_key})
    assert refused.status_code == 400 and "outside the hold" in refused.json()["error"]
    unsafe = dict(footage.entries[0], name="../../controller.db")
    refused = CameraHttp(controller, "cam-c1").request(
        "PUT", CLIP_MANIFEST_PATH.format(hold=hold["id"]), data=manifest_line(unsafe),
        headers={"X-Camera-Key": footage.public_key})
    assert refused.status_code == 400 and "segment name" in refused.json()["error"]
    [unasked] = api("POST", "/api/v1/camera/holds", {
        "camera": "cam-c1", "start": time.time() - 60, "end": time.time(), "reason": "x"})
    none = CameraHttp(controller, "cam-c1").request(
        "GET", CLIP_UPLOAD_PATH.format(hold=unasked["id"]))
    assert none.status_code == 404 and "no clip" in none.json()["error"]


def test_watching_and_downloading_are_audited_and_refused_to_operators_and_technicians(
        controller, office):
    api, _, cams = office
    footage = record(time.time() - 30, 2, first_seq=1)
    hold = held_clip(api, controller, cams["quay-1"], footage)
    assert CameraHttp(controller, "cam-c1").upload(hold["id"], footage)["state"] == "verified"
    video = f"/api/v1/camera/clips/{hold['id']}/video.mp4"
    archive = f"/api/v1/camera/clips/{hold['id']}/archive.tar"
    for role in ("operator", "technician"):
        other = Api(controller, role)
        for path in (video, archive, f"/api/v1/camera/clips/{hold['id']}"):
            assert other.raw("GET", path).status_code == 403, (role, path)
    leader = Api(controller, "leader")
    headers = {**leader.headers, "Range": "bytes=0-"}
    assert requests.get(leader.url + video, headers=headers, timeout=10).status_code == 206
    for first in (1000, 2000):  # the player seeking: the same viewing
        assert requests.get(leader.url + video, timeout=10, headers={
            **leader.headers, "Range": f"bytes={first}-"}).status_code == 206
    assert leader.raw("GET", archive).status_code == 200

    def watched() -> list[dict[str, Any]]:
        return [e for e in api("GET", "/api/v1/audit") if "/camera/clips/" in e["path"]]

    entries = wait_for(lambda: len(watched()) >= 2 and watched())
    time.sleep(0.5)
    assert [(e["method"], e["path"], e["status"], e["user"], e["role"])
            for e in watched()] == [
        ("GET", archive, 200, "docs-leader", "leader"),
        ("GET", video, 206, "docs-leader", "leader")]
    assert entries[0]["address"] == "127.0.0.1" and entries[0]["at"] >= time.time() - 60


def test_the_clip_quota_refuses_a_clip_beyond_it(make_controller, make_node):
    controller = make_controller(clips_quota=50_000)
    api = Api(controller)
    stand_in = camera(make_node, controller, "cam-q1", size=40_000)  # 2 x 40 kB > 50 kB
    now = time.time()
    [hold] = api("POST", "/api/v1/camera/holds", {"camera": "cam-q1", "start": now - 60,
                                                  "end": now, "reason": "phản ánh"})
    wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == HOLD_HELD)
    refused = api.raw("POST", f"/api/v1/camera/holds/{hold['id']}/clip")
    assert refused.status_code == 400 and "clip storage is full" in refused.json()["error"]
    # A hold the camera says is small may be asked for, but not a manifest past the quota.
    stand_in.size = 1_000
    footage = record(now - 30, 1)
    small = held_clip(api, controller, stand_in, footage)
    big = dict(footage.entries[0], size=60_000)
    over = CameraHttp(controller, "cam-q1").request(
        "PUT", CLIP_MANIFEST_PATH.format(hold=small["id"]), data=manifest_line(big),
        headers={"X-Camera-Key": footage.public_key})
    assert over.status_code == 400 and "clip storage is full" in over.json()["error"]


def test_the_report_counts_holds_and_verified_clips(controller, office):
    api, kiosks, cams = office
    rate(kiosks["quay-2"], 4)
    wait_for(lambda: holds(api))
    footage = record(time.time() - 30, 1)
    hold = held_clip(api, controller, cams["quay-1"], footage)
    CameraHttp(controller, "cam-c1").upload(hold["id"], footage)
    today = commune.local_today()
    data = api("GET", "/api/v1/reports/model", since=today.isoformat(),
               until=(today + dt.timedelta(days=1)).isoformat())
    bounds = {k: str(dt.datetime.fromisoformat(data["period"][k]).timestamp())
              for k in ("since", "until")}
    made = holds(api, **bounds)
    assert data["cameras"]["applicable"] is True
    assert data["cameras"]["holds"] == len(made) == 2
    assert (data["cameras"]["automatic"], data["cameras"]["manual"]) == (1, 1)
    assert data["cameras"]["clips_verified"] == len(
        api("GET", "/api/v1/camera/clips", state="verified")) == 1


# -- the console ------------------------------------------------------------------------------

def test_the_camera_page_is_the_leaders_in_vietnamese(controller, office):
    for role in ("leader", "technician"):
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    api, kiosks, _ = office
    rate(kiosks["quay-1"], 4)
    wait_for(lambda: holds(api))
    page = signed_in(controller, "leader").get(controller.api_url + "/camera", timeout=10)
    assert page.status_code == 200
    assert "Chỉ lãnh đạo được xem; mọi lần xem được ghi nhật ký." in page.text
    assert "Camera giám sát" in page.text and "đánh giá không hài lòng" in page.text
    assert "Yêu cầu tải đoạn ghi hình" in page.text and "Thôi giữ" in page.text
    assert "<script>" not in page.text  # the page's CSP allows only the controller's files
    refused = signed_in(controller, "technician").get(controller.api_url + "/camera",
                                                      timeout=10)
    assert refused.status_code == 403


def test_leader_holds_footage_asks_for_its_clip_and_watches_it_in_chromium(
        browser, controller, office):
    controller.writer.call(lambda db: users.add_user(db, "nguoi-leader", "leader",
                                                     BROWSER_PASSWORD))
    api, _, cams = office
    footage = record(time.time() - 30, 3, first_seq=11)
    cams["quay-1"].tell(footage)
    wait_for(lambda: _camera(api, "cam-c1")["last_seq"] == 13)
    zone = ZoneInfo(TIMEZONE)
    first = dt.datetime.fromtimestamp(footage.entries[0]["start"] - 60, zone)
    visit = Visit(browser, controller.api_url, accept_downloads=True)
    try:
        visit.sign_in("nguoi-leader")
        page = visit.page
        page.goto(controller.api_url + "/camera")
        assert "Chỉ lãnh đạo được xem; mọi lần xem được ghi nhật ký." in page.inner_text("main")
        page.select_option("#target", "camera:cam-c1")
        page.fill("#start", first.strftime("%Y-%m-%dT%H:%M"))
        page.fill("#end", (first + dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M"))
        page.fill("#reason", "Công dân phản ánh thái độ")
        with page.expect_navigation():
            page.click("#hold-form button[type=submit]")
        [hold] = holds(api)
        assert hold["reason"] == "Công dân phản ánh thái độ" and hold["created_by"] == (
            "nguoi-leader")
        wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == "held")
        page.reload()
        row = page.locator(f"tr[data-hold='{hold['id']}']")
        assert row.locator("[data-field=state]").inner_text() == "đang giữ"
        with page.expect_navigation():
            row.get_by_role("button", name="Yêu cầu tải đoạn ghi hình").click()
        assert page.locator(f"tr[data-hold='{hold['id']}'] [data-field=clip]").inner_text(
            ) == "đã yêu cầu"
        wait_for(lambda: cams["quay-1"].asked_for(CMD_CLIP))
        assert CameraHttp(controller, "cam-c1").upload(hold["id"], footage)["state"] == (
            "verified")
        page.reload()
        with page.expect_navigation():
            page.locator(f"tr[data-hold='{hold['id']}']").get_by_role("link",
                                                                      name="Xem").click()
        duration = page.eval_on_selector("video", """v => new Promise((ok, fail) => {
            v.addEventListener("loadedmetadata", () => ok(v.duration));
            v.addEventListener("error", () => fail(String(v.error && v.error.message)));
            v.load(); })""")
        assert duration == pytest.approx(3.0, abs=0.2)
        with page.expect_download() as download:
            page.click("#archive")
        saved = pathlib.Path(download.value.path())
        assert verify(saved, public_key_hex=footage.public_key).ok
    finally:
        visit.close()
    entries = wait_for(lambda: len(found := [e for e in api("GET", "/api/v1/audit")
                                             if "/camera/clips/" in e["path"]]) >= 2 and found)
    assert {(e["path"].rsplit("/", 1)[1], e["user"]) for e in entries} == {
        ("video.mp4", "nguoi-leader"), ("archive.tar", "nguoi-leader")}


def test_a_real_camera_node_keeps_and_uploads_the_footage_of_a_dissatisfied_rating(
        controller, make_node, tmp_path):
    """The contract end to end with camera_node itself: it records real segments, the
    controller holds them after a rating, the camera uploads the clip (chunked bodies, its
    own manifest run) and the controller verifies it against the key the camera pinned."""
    controller.cameras.hold_before_s, controller.cameras.hold_after_s = 3.0, 0.0
    api = Api(controller)
    kiosk = make_node("kiosk-r1", controller=controller)
    node = make_node("cam-r1", controller=controller, role="camera", start=False,
                     role_settings={**SMALL, "controller_url": controller.api_url})
    real = build(node)
    node.start()
    try:
        api("PUT", "/api/v1/desks/quay-r", {"name": "Quầy R", "kiosk": "kiosk-r1"})
        api("PUT", "/api/v1/desks/quay-r/cameras", {"cameras": ["cam-r1"]})
        wait_for(lambda: len(real.store.segments()) >= 5, timeout=30)
        rate(kiosk, 4)
        [hold] = wait_for(lambda: holds(api))
        wait_for(lambda: api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == HOLD_HELD,
                 timeout=30)
        assert _camera(api, "cam-r1")["public_key"] == real.public_key
        api("POST", f"/api/v1/camera/holds/{hold['id']}/clip")
        clip = wait_for(lambda: (c := api("GET", f"/api/v1/camera/clips/{hold['id']}"))[
            "state"] in ("verified", "failed") and c, timeout=60)
        assert (clip["state"], clip["problems"], clip["video"]) == ("verified", [], True)
        assert clip["segments"] == len(real.store.between(hold["start"], hold["end"])) >= 3
        video = Api(controller, "leader").raw("GET", f"/api/v1/camera/clips/{hold['id']}/"
                                              "video.mp4")
        (tmp_path / "clip.mp4").write_bytes(video.content)
        assert ffprobe(tmp_path / "clip.mp4")["streams"][0]["codec_name"] == "h264"
    finally:
        real.close()


def test_an_expired_holds_clip_and_chain_heads_go(controller, office):
    api, _, cams = office
    footage = record(time.time() - 30, 1)
    hold = held_clip(api, controller, cams["quay-1"], footage)
    assert CameraHttp(controller, "cam-c1").upload(hold["id"], footage)["state"] == "verified"
    assert any(controller.cameras.clips_dir.iterdir())
    later = time.time() + 121 * 86400  # past the hold's 90 days and the heads' 120
    controller.cameras.sweep(now=later)
    assert api("GET", f"/api/v1/camera/holds/{hold['id']}")["state"] == "expired"
    clip = api("GET", f"/api/v1/camera/clips/{hold['id']}")
    assert (clip["state"], clip["bytes"]) == ("deleted", 0)
    assert list(controller.cameras.clips_dir.iterdir()) == []
    assert Api(controller, "leader").raw(
        "GET", f"/api/v1/camera/clips/{hold['id']}/video.mp4").status_code == 404
    assert _camera(api, "cam-c1")["last_seq"] is None  # no hold covers its heads now
