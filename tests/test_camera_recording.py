"""The desk camera's recording core: real libx264 frames through PyAV, real MPEG-TS files
read back by ffprobe, a real filesystem that fills up, a real process killed mid-segment."""

from __future__ import annotations

import ctypes
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from camera_node.frames import EncodedFrame, FrameSink
from camera_node.recorder import Recorder
from camera_node.retention import Retention
from camera_node.segments import Segmenter
from camera_node.store import SegmentStore
from camera_node.synthetic import SyntheticSource
from conftest import wait_for
from wire.footage import verify

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMALL = {"width": 320, "height": 240, "fps": 30}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def ffprobe(*args: str | pathlib.Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *map(str, args)],
                         check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out))


def packets(path: pathlib.Path) -> list[tuple[float, bool]]:
    """(pts seconds, keyframe) of every video packet, as ffprobe reads the file."""
    found = ffprobe("-select_streams", "v", "-show_entries", "packet=pts_time,flags", path)
    return [(float(p["pts_time"]), "K" in p["flags"]) for p in found["packets"]]


def manifest_entries(root: pathlib.Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(root.glob("manifest-*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def record(store: SegmentStore, frames: int, *, segment_s: float = 1.0,
           keyframe_s: float = 0.5, **source: Any) -> tuple[SyntheticSource, Segmenter]:
    """Encode ``frames`` frames as fast as possible into ``store``; flushed."""
    segmenter = Segmenter(store, segment_s=segment_s)
    camera = SyntheticSource([segmenter], realtime=False, keyframe_interval_s=keyframe_s,
                             **{**SMALL, **source})
    camera.encode_frames(frames)
    segmenter.close()
    return camera, segmenter


# -- segments ------------------------------------------------------------------------------


def test_segments_continuous_across_ten_boundaries(tmp_path: pathlib.Path,
                                                   key: Ed25519PrivateKey) -> None:
    """No frame lost or duplicated where one file ends and the next begins."""
    store = SegmentStore(tmp_path, key)
    camera, segmenter = record(store, 11 * 30 + 5)  # 11 full seconds and a bit
    segments = store.segments()
    assert len(segments) == 12
    interval = 1 / 30
    all_pts: list[float] = []
    for segment in segments:
        probed = ffprobe("-show_entries", "stream=codec_name,codec_type:format=format_name",
                         segment.path)
        assert probed["format"]["format_name"] == "mpegts"
        assert [s["codec_name"] for s in probed["streams"]] == ["h264"]  # no audio, ever
        got = packets(segment.path)
        assert got[0][1], f"{segment.name} does not start at a keyframe"
        assert len(got) == segment.frames
        if all_pts:
            gap = got[0][0] - all_pts[-1]
            assert abs(gap - interval) < interval / 2, f"gap {gap:.4f} s before {segment.name}"
        all_pts += [pts for pts, _ in got]
    assert len(all_pts) == camera.frames_encoded == 335
    assert len(set(all_pts)) == len(all_pts)
    steps = [b - a for a, b in zip(all_pts, all_pts[1:], strict=False)]
    assert all(abs(step - interval) < interval / 2 for step in steps)
    for segment in segments[:-1]:  # cut at the first keyframe once a second long
        assert segment.frames == 30
        assert segment.end - segment.start == pytest.approx(1.0, abs=0.01)
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(segments[5].path),
                              "-f", "null", "-"], capture_output=True, text=True)
    assert decoded.returncode == 0 and not decoded.stderr  # decodes alone
    assert verify(tmp_path).ok


def test_segment_metadata_records_dropped_frames(tmp_path: pathlib.Path,
                                                 key: Ed25519PrivateKey) -> None:
    """A camera that falls behind skips frames; the manifest says where."""
    store = SegmentStore(tmp_path, key)
    segmenter = Segmenter(store, segment_s=10)

    class Stall:
        """A sink that stalls once, like a card pausing the encoder's thread."""

        seen = 0

        def outputframe(self, frame: EncodedFrame) -> None:
            self.seen += 1
            if self.seen == 10:
                time.sleep(0.25)

    with SyntheticSource([segmenter, Stall()], max_frames=30, **SMALL) as camera:
        camera.start()
        assert camera.wait(5)
    segmenter.close()
    assert camera.frames_dropped >= 5
    (entry,) = [e for e in manifest_entries(tmp_path) if e["kind"] == "segment"]
    assert entry["frames"] == 30
    gaps = entry["pts"]["gaps"]
    assert len(gaps) == 1 and gaps[0][0] == 10 and gaps[0][1] == camera.frames_dropped


def test_segment_buffer_grows_past_its_first_capacity() -> None:
    """A segment larger than the room first set aside (a busy scene at a high bitrate)
    is kept whole."""
    from camera_node.segments import _Buffer

    buffer = _Buffer(4096)
    chunks = [bytes([n]) * 1500 for n in range(10)]
    for chunk in chunks:
        buffer.write(chunk)
    with buffer.view() as view:
        assert bytes(view) == b"".join(chunks)
    buffer.close()


class Inotify:
    """What happens to names in one folder, from the kernel (inotify through libc)."""

    CREATE, MOVED_TO, CLOSE_WRITE = 0x100, 0x80, 0x8

    def __init__(self, folder: pathlib.Path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        mask = self.CREATE | self.MOVED_TO | self.CLOSE_WRITE
        assert self.libc.inotify_add_watch(self.fd, str(folder).encode(), mask) >= 0

    def events(self) -> list[tuple[int, str]]:
        out = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return out
            offset = 0
            while offset < len(data):
                _, mask, _, size = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16:offset + 16 + size].rstrip(b"\0").decode()
                out.append((mask, name))
                offset += 16 + size

    def close(self) -> None:
        os.close(self.fd)


def test_segment_final_name_appears_only_whole(tmp_path: pathlib.Path,
                                               key: Ed25519PrivateKey) -> None:
    """A segment is written under ``.partial`` and renamed: its own name never names a
    file being written, so a power cut can leave no half segment under it."""
    wall = time.time()
    day = tmp_path / time.strftime("%Y%m%d", time.gmtime(wall))
    day.mkdir()
    watch = Inotify(day)
    try:
        store = SegmentStore(tmp_path, key)
        record(store, 125, clock=lambda: wall)
        events = watch.events()
    finally:
        watch.close()
    names = {s.path.name for s in store.segments()}
    assert len(names) == 5
    for name in names:
        happened = {mask & ~0x40000000 for mask, n in events if n == name}
        assert happened == {Inotify.MOVED_TO}, f"{name}: {happened}"
        assert (Inotify.CLOSE_WRITE, name + ".partial") in events
    assert not list(day.glob("*.partial"))
    assert all(s.path.stat().st_size == s.size for s in store.segments())


def test_store_removes_leftover_partials_at_start(tmp_path: pathlib.Path,
                                                 key: Ed25519PrivateKey) -> None:
    store = SegmentStore(tmp_path, key)
    record(store, 65)
    first = store.segments()[0]
    leftover = first.path.with_name("235959-00000099.ts.partial")
    leftover.write_bytes(first.path.read_bytes()[:1000])  # killed mid-write
    SegmentStore(tmp_path, key)
    assert not leftover.exists()
    assert verify(tmp_path).ok


def test_store_restart_continues_seq_and_chain(tmp_path: pathlib.Path,
                                               key: Ed25519PrivateKey) -> None:
    store = SegmentStore(tmp_path, key)
    record(store, 65)
    seq, chain = store.head()
    again = SegmentStore(tmp_path, key)
    assert again.head() == (seq, chain)
    record(again, 35)
    entries = manifest_entries(tmp_path)
    resumed = next(e for e in entries if e["seq"] == seq + 1)
    assert resumed["prev"] == chain
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert verify(tmp_path).ok


def test_store_recovers_segment_whose_manifest_line_was_cut(tmp_path: pathlib.Path,
                                                            key: Ed25519PrivateKey) -> None:
    """Power cut mid-append: the torn line is dropped, the whole file it described is
    entered again from the file itself, marked recovered; the footage verifies."""
    store = SegmentStore(tmp_path, key)
    record(store, 95)
    last = store.segments()[-1]
    (manifest,) = tmp_path.glob("manifest-*.jsonl")
    data = manifest.read_bytes()
    manifest.write_bytes(data[:-40])  # the last line, cut short
    again = SegmentStore(tmp_path, key)
    assert again.recovered == 1
    entry = manifest_entries(tmp_path)[-1]
    assert entry["recovered"] is True and entry["seq"] == last.seq
    assert entry["sha256"] == last.sha256 and entry["frames"] == last.frames
    assert entry["end"] - entry["start"] == pytest.approx(last.end - last.start, abs=0.01)
    assert manifest.read_bytes().endswith(b"\n")
    assert verify(tmp_path).ok


# -- retention -----------------------------------------------------------------------------


class Statvfs:
    """A filesystem reporting ``free`` bytes (a real callable with statvfs's fields)."""

    def __init__(self, free: int):
        self.free = free

    def __call__(self, path: object) -> os.statvfs_result:
        return os.statvfs_result((4096, 4096, 1 << 20, 0, self.free // 4096, 0, 0, 0, 0, 255))


def test_retention_retires_old_then_over_quota_never_held_nor_newest(
        tmp_path: pathlib.Path, key: Ed25519PrivateKey) -> None:
    now = time.time()
    store = SegmentStore(tmp_path, key)
    record(store, 120, clock=lambda: now - 40 * 86400)  # four segments, 40 days old
    record(store, 150, clock=lambda: now - 600)  # five recent ones
    old, recent = store.segments()[:4], store.segments()[4:]
    held = {old[1].seq, recent[0].seq}
    retention = Retention(store, max_age_s=30 * 86400, statvfs=Statvfs(1 << 40),
                          min_free_bytes=1 << 20, protected=lambda s: s.seq in held)
    gone = retention.enforce(now)
    assert [s.seq for s in gone] == [old[0].seq, old[2].seq, old[3].seq]
    retention.quota_bytes = sum(s.size for s in [old[1], recent[0], *recent[-2:]])
    gone = retention.enforce(now)
    assert [s.seq for s in gone] == [s.seq for s in recent[1:3]]  # oldest first, held kept
    retention.quota_bytes = 0
    retention.enforce(now)
    assert {s.seq for s in store.segments()} == held | {recent[-1].seq}  # newest stays
    reasons = [e["reason"] for e in manifest_entries(tmp_path) if e["kind"] == "retired"]
    assert reasons == ["age", "quota", "quota"]
    assert verify(tmp_path).ok


def test_retention_keeps_free_space(tmp_path: pathlib.Path, key: Ed25519PrivateKey) -> None:
    store = SegmentStore(tmp_path, key)
    record(store, 150)
    fs = Statvfs(10 << 20)
    sizes = [s.size for s in store.segments()]
    retention = Retention(store, min_free_bytes=(10 << 20) + sizes[0] + sizes[1] // 2,
                          statvfs=fs)
    gone = retention.enforce()
    assert [s.seq for s in gone] == [1, 2]
    assert [e["reason"] for e in manifest_entries(tmp_path) if e["kind"] == "retired"] == [
        "disk_full"]


@pytest.fixture
def small_disk(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A real 40 MB ext4 filesystem (a loop device; tmpfs if loops are not available),
    unmounted whatever the test does."""
    image, mount = tmp_path / "disk.img", tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["truncate", "-s", "40M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    made = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True)
    if made.returncode != 0:
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)],
                              capture_output=True)
    assert made.returncode == 0, f"cannot mount a small filesystem: {made.stderr!r}"
    try:
        yield mount / "footage"
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], check=False)


def noisy_camera(sinks: list[FrameSink]) -> SyntheticSource:
    """About 1 MB a second: the disk fills in half a minute of video."""
    return SyntheticSource(sinks, realtime=False, noise=True, bitrate=8_000_000,
                           keyframe_interval_s=0.5, **SMALL)


def test_full_disk_keeps_recording_and_deletes_oldest_unprotected(
        small_disk: pathlib.Path, key: Ed25519PrivateKey) -> None:
    store = SegmentStore(small_disk, key)
    held = {1, 2, 3}
    retention = Retention(store, min_free_bytes=0, protected=lambda s: s.seq in held)
    stored: list[int] = []
    with Recorder(noisy_camera, store, retention, segment_s=1.0,
                  on_segment=lambda s: stored.append(s.seq)) as recorder:
        recorder.start()
        wait_for(lambda: len(stored) >= 120, timeout=60)  # the disk filled several times
        status = recorder.status()
    assert status["recording"] and status["reason"] is None
    assert stored == list(range(1, len(stored) + 1))  # every segment stored, in order
    assert store.disk_full_events >= 3
    assert recorder.segmenter.segments_lost == 0 and store.segments_lost_disk_full == 0
    present = [s.seq for s in store.segments()]
    assert present[:3] == [1, 2, 3]  # held: never deleted
    rest = present[3:]
    assert rest == list(range(rest[0], rest[-1] + 1)) and rest[-1] == stored[-1]
    retired = [seq for e in manifest_entries(small_disk) if e["kind"] == "retired"
               for seq in e["seqs"]]
    assert retired == list(range(4, rest[0]))  # the oldest unprotected went first
    assert {e["reason"] for e in manifest_entries(small_disk) if e["kind"] == "retired"} == {
        "disk_full"}
    result = verify(small_disk)
    assert result.ok, result.problems
    assert result.retired == len(retired)


def test_full_disk_of_held_footage_drops_segments_and_resumes(
        small_disk: pathlib.Path, key: Ed25519PrivateKey) -> None:
    """When every segment is held, new ones are dropped and counted, the camera keeps
    running, and storing resumes when the hold is released."""
    store = SegmentStore(small_disk, key)
    hold = threading.Event()
    hold.set()
    retention = Retention(store, min_free_bytes=0, protected=lambda s: hold.is_set())
    with Recorder(noisy_camera, store, retention, segment_s=1.0) as recorder:
        recorder.start()
        wait_for(lambda: store.segments_lost_disk_full >= 3, timeout=60)
        status = recorder.status()
        assert not status["recording"] and status["reason"] == "disk full"
        assert status["segments_lost"] >= 3
        assert recorder.source is not None and recorder.source.error is None
        written = recorder.segmenter.segments_written
        hold.clear()
        wait_for(lambda: recorder.segmenter.segments_written >= written + 5, timeout=60)
        wait_for(lambda: recorder.status()["reason"] is None, timeout=10)
    result = verify(small_disk)
    assert result.ok, result.problems


# -- the recorder --------------------------------------------------------------------------


class PulledCable:
    """A sink that fails once after ``after`` frames, like a camera ribbon pulled out."""

    def __init__(self, after: int):
        self.after, self.seen = after, 0

    def outputframe(self, frame: EncodedFrame) -> None:
        self.seen += 1
        if self.seen == self.after:
            raise OSError("camera ribbon cable pulled")


def test_recorder_restarts_a_failed_camera(tmp_path: pathlib.Path,
                                           key: Ed25519PrivateKey) -> None:
    store = SegmentStore(tmp_path, key)
    cable = PulledCable(after=40)
    made: list[SyntheticSource] = []

    def factory(sinks: list[FrameSink]) -> SyntheticSource:
        extra = [cable] if not made else []
        made.append(SyntheticSource([*sinks, *extra], realtime=False, max_frames=200,
                                    keyframe_interval_s=0.5, **SMALL))
        return made[-1]

    seen: list[dict[str, Any]] = []
    with Recorder(factory, store, Retention(store, min_free_bytes=0), segment_s=0.5,
                  backoff_s=0.3) as recorder:
        recorder.start()
        wait_for(lambda: seen.append(recorder.status()) or len(made) == 2, timeout=10)
        wait_for(lambda: made[1].frames_encoded == 200, timeout=10)
    assert any(s["reason"] == "camera failed: camera ribbon cable pulled" for s in seen)
    assert recorder.restarts == 1
    frames = sum(s.frames for s in store.segments())
    assert frames == 40 + 200  # what the first camera sent before failing, then all
    assert verify(tmp_path).ok


def test_recorder_status_reports_footage(tmp_path: pathlib.Path,
                                         key: Ed25519PrivateKey) -> None:
    store = SegmentStore(tmp_path, key)
    heads: list[tuple[int, str]] = []

    def factory(sinks: list[FrameSink]) -> SyntheticSource:
        return SyntheticSource(sinks, keyframe_interval_s=0.5, **SMALL)  # real time

    with Recorder(factory, store, Retention(store, min_free_bytes=0), segment_s=0.5,
                  on_segment=lambda s: heads.append((s.seq, s.chain))) as recorder:
        recorder.start()
        wait_for(lambda: len(heads) >= 2, timeout=10)
        status = recorder.status()
    assert status["recording"] is True and status["reason"] is None
    assert status["segments"] >= 2
    assert status["bytes"] == sum(s.size for s in store.segments()[:status["segments"]])
    assert status["oldest"] == store.segments()[0].start
    assert status["free_bytes"] > 0
    assert 20 <= status["fps"] <= 40
    assert status["head_seq"] >= heads[1][0]
    assert recorder.status()["reason"] == "stopped"
    assert verify(tmp_path, expected_heads=dict(heads)).ok


def _recorder_process(root: pathlib.Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "camera_node.recorder", "--root", str(root), "--key",
         str(root.parent / "camera.key"), "--synthetic", "--segment-s", "1", "--keyframe-s",
         "0.5", "--width", "320", "--height", "240", "--min-free-mb", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _segment_entries(root: pathlib.Path) -> list[dict[str, Any]]:
    if not root.exists():
        return []
    return [e for e in manifest_entries(root) if e["kind"] == "segment"]


def test_recorder_killed_mid_segment_loses_at_most_that_segment(
        tmp_path: pathlib.Path) -> None:
    root = tmp_path / "footage"
    process = _recorder_process(root)
    try:
        wait_for(lambda: len(_segment_entries(root)) >= 2, timeout=30)
        time.sleep(0.5)  # half way through the next segment
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
    before = _segment_entries(root)
    process = _recorder_process(root)
    try:
        wait_for(lambda: len(_segment_entries(root)) >= len(before) + 2, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err.decode()[-2000:]
    after = _segment_entries(root)
    assert after[:len(before)] == before  # nothing stored before the kill was lost
    resumed = after[len(before)]
    assert resumed["seq"] == before[-1]["seq"] + 1
    entries = manifest_entries(root)
    assert entries[entries.index(resumed) - 1]["chain"] == resumed["prev"]
    assert not list(root.rglob("*.partial"))
    result = verify(root)
    assert result.ok, result.problems
    assert result.segments == len(after)


def test_verify_catches_footage_from_a_killed_recorder_only_if_tampered(
        tmp_path: pathlib.Path, key: Ed25519PrivateKey) -> None:
    """The check the SIGKILL test relies on can fail: an unlisted file is reported."""
    store = SegmentStore(tmp_path, key)
    record(store, 65)
    stray = store.segments()[0].path.with_name("120000-00000077.ts")
    stray.write_bytes(b"\0" * 188)
    result = verify(tmp_path)
    assert not result.ok and "unlisted" in result.problems[0]

