"""Desk camera benchmarks: what keeping footage costs beside the encoder.

``run(quick)`` returns ``(name, value, unit, goal, note)`` rows for ``make bench``;
``python -m bench.camera`` prints them as ``BENCH`` lines.

- CPU: 1080p30 synthetic video (a quarter of the picture noise, so libx264 spends
  its 4 Mbit/s) is encoded once, its CPU timed (``time.process_time``, all
  threads); the same encoded frames are then fed through the segmenter (MPEG-TS
  muxing in memory), the store (write, fsync, sha256, signed manifest line) and
  retention, CPU timed the same way. The figure is the ratio of the two: on a
  Pi 4 the encoder is hardware, so the ratio to a software encoder is the
  portable measure; the absolute figures are given beside it.
- Memory: a separate process runs segmenter, store and retention (no encoder)
  fed with pre-encoded 1080p frames at real-time pace, 60 s segments, for three
  minutes; the figure is its peak RSS (VmHWM) minus its RSS before the first frame.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from camera_node.frames import EncodedFrame
from camera_node.retention import Retention
from camera_node.segments import Segmenter
from camera_node.store import SegmentStore
from camera_node.synthetic import SyntheticSource

FPS = 30
BITRATE = 4_000_000


class _Keep:
    """A sink that keeps every frame (to feed them again without the encoder)."""

    def __init__(self) -> None:
        self.frames: list[EncodedFrame] = []

    def outputframe(self, frame: EncodedFrame) -> None:
        self.frames.append(frame)


def encode(seconds: int) -> tuple[list[EncodedFrame], float]:
    """``seconds`` of 1080p30 encoded; the frames and the encoder's CPU seconds."""
    kept = _Keep()
    camera = SyntheticSource([kept], width=1920, height=1080, fps=FPS, bitrate=BITRATE,
                             keyframe_interval_s=1.0, realtime=False, noise=True)
    camera.encode_frames(FPS)  # warm-up: the encoder's start is not per-second cost
    kept.frames.clear()
    t0 = time.process_time()
    camera.encode_frames(seconds * FPS)
    return kept.frames, time.process_time() - t0


def store_cpu(frames: list[EncodedFrame], segment_s: float) -> float:
    """CPU seconds to segment, mux, write, hash and sign ``frames``, retention included."""
    with tempfile.TemporaryDirectory() as folder:
        store = SegmentStore(folder, Ed25519PrivateKey.generate())
        retention = Retention(store, min_free_bytes=0)
        segmenter = Segmenter(store, segment_s=segment_s,
                              on_segment=lambda s: retention.enforce())
        t0 = time.process_time()
        for frame in frames:
            segmenter.outputframe(frame)
        segmenter.close()
        return time.process_time() - t0


def _vm(field: str) -> float:
    """A /proc/self/status figure in MB."""
    status = pathlib.Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def memory_child(frames_file: str, seconds: int, segment_s: float) -> dict[str, Any]:
    """Run in its own process: feed pre-encoded frames in real time; RSS before and peak."""
    frames = pickle.loads(pathlib.Path(frames_file).read_bytes())
    with tempfile.TemporaryDirectory() as folder:
        store = SegmentStore(folder, Ed25519PrivateKey.generate())
        retention = Retention(store, min_free_bytes=0)
        segmenter = Segmenter(store, segment_s=segment_s,
                              on_segment=lambda s: retention.enforce())
        import av  # noqa: F401  (the muxer's library: loaded before the baseline)

        before = _vm("VmRSS")
        step = round(1_000_000 / FPS)
        t0, wall0, pts0 = time.monotonic(), time.time(), time.monotonic_ns() // 1000
        for i in range(seconds * FPS):
            delay = t0 + i / FPS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data, key = frames[i % len(frames)]
            segmenter.outputframe(EncodedFrame(data, key, pts0 + i * step, wall0 + i / FPS))
        segmenter.close()
        return {"before_mb": before, "peak_mb": _vm("VmHWM"), "segments": len(store.segments()),
                "bytes": store.bytes_used()}


def memory(frames: list[EncodedFrame], seconds: int, segment_s: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".pickle") as f:
        f.write(pickle.dumps([(fr.data, fr.keyframe) for fr in frames]))
        f.flush()
        out = subprocess.run([sys.executable, "-m", "bench.camera", "--memory-child", f.name,
                              "--seconds", str(seconds), "--segment-s", str(segment_s)],
                             check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def run(quick: bool = False) -> list[tuple[str, float, str, str, str]]:
    seconds = 5 if quick else 20
    frames, encoder_cpu = encode(seconds)
    mbit = sum(len(f.data) for f in frames) * 8 / seconds / 1e6
    segment_s = 5.0
    cpu = min(store_cpu(frames, segment_s) for _ in range(3))
    gop = frames[:10 * FPS] if len(frames) >= 10 * FPS else frames
    mem_seconds, mem_segment = (20, 10.0) if quick else (180, 60.0)
    result = memory(gop, mem_seconds, mem_segment)
    growth = result["peak_mb"] - result["before_mb"]
    return [
        ("camera_encoder_cpu_per_video_s", round(encoder_cpu / seconds, 3), "s/s", "-",
         f"baseline: libx264 ultrafast/zerolatency, 1080p30 at {mbit:.1f} Mbit/s, "
         f"{seconds} s of video"),
        ("camera_store_cpu_per_video_s", round(cpu / seconds, 4), "s/s", "-",
         f"segment ({segment_s:.0f} s) + MPEG-TS mux + write/fsync + sha256 + signed "
         "manifest + retention, the same frames, best of 3"),
        ("camera_store_cpu_vs_encoder", round(cpu / encoder_cpu, 4), "ratio", "<= 0.03",
         "store CPU / encoder CPU for the same video"),
        ("camera_store_rss_growth", round(growth, 1), "MB", "<= 60",
         f"peak RSS - RSS before, segmenter+store+retention fed {mem_seconds} s of 1080p "
         f"({mbit:.1f} Mbit/s) in real time, {mem_segment:.0f} s segments "
         f"({result['segments']} stored)"),
        ("camera_store_process_rss_before", round(result["before_mb"], 1), "MB", "-",
         "baseline: that process with PyAV, cryptography and the frames loaded"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.camera")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=180, help=argparse.SUPPRESS)
    parser.add_argument("--segment-s", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.seconds, args.segment_s)))
        return
    for name, value, unit, _, _ in run(args.quick):
        print(f"BENCH {name} {value} {unit}", flush=True)


if __name__ == "__main__":
    main()
