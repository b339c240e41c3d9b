"""The recording loop: camera -> segmenter -> store, retention after each segment.

Recording never stops on its own: a camera that fails is closed and started
again after a backoff (1 s, doubling to 30 s); a segment the card has no room
for is dropped and counted while retention makes room; :meth:`Recorder.status`
says which, for telemetry.

``python -m camera_node.recorder --root DIR --synthetic`` runs it alone (for
tests and benchmarks; the camera role builds a :class:`Recorder` itself).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from camera_node.errors import DiskFull
from camera_node.frames import FrameSink, Source
from camera_node.retention import Retention
from camera_node.segments import Segmenter
from camera_node.store import Segment, SegmentStore

log = logging.getLogger(__name__)

SourceFactory = Callable[[list[FrameSink]], Source]


class Recorder:
    """Runs ``source_factory([segmenter])`` and keeps it running; stores what it sends.

    ``on_segment`` is called (on the writer thread) after each segment is stored and
    retention has run: the role reports the chain head from there.
    """

    def __init__(self, source_factory: SourceFactory, store: SegmentStore,
                 retention: Retention, *, segment_s: float = 60.0,
                 on_segment: Callable[[Segment], None] | None = None,
                 backoff_s: float = 1.0, backoff_max_s: float = 30.0):
        self.source_factory = source_factory
        self.store, self.retention = store, retention
        self.on_segment = on_segment
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.segmenter = Segmenter(store, segment_s=segment_s, on_segment=self._stored)
        if store.on_full is None:
            store.on_full = self._make_room
        self.source: Source | None = None
        self.restarts = 0
        self._failure: str | None = "not started"
        self._dropped_before = 0  # frames dropped by sources since replaced
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Start the camera (on a supervising thread that restarts it when it fails)."""
        if self._thread is not None:
            return
        self._failure = "starting"
        self._thread = threading.Thread(target=self._supervise, name="recorder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the camera and store the open segment; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._stop_source()
        self.segmenter.close()
        self._failure = "stopped"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- status -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What telemetry reports: whether footage is being kept, and why not."""
        source, segmenter = self.source, self.segmenter
        reason = self._failure
        if reason is None and isinstance(segmenter.last_error, DiskFull):
            reason = "disk full"
        elif reason is None and segmenter.last_error is not None:
            reason = f"storage error: {segmenter.last_error}"
        head_seq, head_chain = self.store.head()
        return {
            "recording": reason is None,
            "reason": reason,
            "segments": len(self.store.segments()),
            "bytes": self.store.bytes_used(),
            "oldest": self.store.oldest(),
            "free_bytes": self.retention.free_bytes(),
            "fps": source.measured_fps if source is not None else 0.0,
            "frames_dropped": self._dropped_before + (source.frames_dropped if source else 0),
            "segments_lost": segmenter.segments_lost,
            "segments_lost_disk_full": self.store.segments_lost_disk_full,
            "camera_restarts": self.restarts,
            "head_seq": head_seq,
            "head_chain": head_chain,
        }

    # -- the camera, kept running -------------------------------------------------------

    def _supervise(self) -> None:
        delay = self.backoff_s
        while not self._stop.is_set():
            started = time.monotonic()
            error = self._run_source()
            if error is None:
                return  # closing
            self._stop_source()
            self.segmenter.flush()  # keep what the camera sent before it failed
            if time.monotonic() - started > 60:
                delay = self.backoff_s  # it had been running well: a fresh failure
            self._failure = f"camera failed: {error}"
            log.error("camera failed (%s); restarting in %.0f s", error, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max_s)
            self.restarts += 1

    def _run_source(self) -> BaseException | None:
        """Start a source and watch it; return what killed it, or None when closing."""
        try:
            self.source = self.source_factory([self.segmenter])
            self.source.start()
        except Exception as exc:
            log.exception("camera could not start")
            return exc
        self._failure = None
        while not self._stop.wait(0.2):
            if self.source.error is not None:
                return self.source.error
        return None

    def _stop_source(self) -> None:
        source, self.source = self.source, None
        if source is None:
            return
        try:
            source.close()
        except Exception:
            log.exception("closing the failed camera")
        self._dropped_before += source.frames_dropped

    # -- after each segment -------------------------------------------------------------

    def _stored(self, segment: Segment) -> None:
        try:
            self.retention.enforce()
        except OSError:
            log.exception("retention failed after seq %d", segment.seq)
        if self.on_segment is not None:
            self.on_segment(segment)

    def _make_room(self, need_bytes: int) -> None:
        try:
            self.retention.enforce(need_bytes=need_bytes)
        except OSError:
            log.exception("retention could not make room for %d bytes", need_bytes)


# -- running it alone, for tests and benchmarks --------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m camera_node.recorder",
                                     description="Record until SIGTERM (tests, benchmarks).")
    parser.add_argument("--root", type=pathlib.Path, required=True, help="footage folder")
    parser.add_argument("--key", type=pathlib.Path,
                        help="signing key (default: camera.key beside the footage folder)")
    parser.add_argument("--synthetic", action="store_true", help="drawn frames, no camera")
    parser.add_argument("--fast", action="store_true", help="synthetic, not paced in real time")
    parser.add_argument("--noise", action="store_true", help="synthetic frames with noise")
    parser.add_argument("--segment-s", type=float, default=60.0)
    parser.add_argument("--keyframe-s", type=float, default=1.0)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=4_000_000)
    parser.add_argument("--max-age-days", type=float, default=30.0)
    parser.add_argument("--quota-mb", type=float)
    parser.add_argument("--min-free-mb", type=float, default=512.0)
    return parser


def _factory(args: argparse.Namespace) -> SourceFactory:
    settings = {"width": args.width, "height": args.height, "fps": args.fps,
                "keyframe_interval_s": args.keyframe_s, "bitrate": args.bitrate}
    if args.synthetic:
        from camera_node.synthetic import SyntheticSource

        return lambda sinks: SyntheticSource(sinks, realtime=not args.fast, noise=args.noise,
                                             **settings)
    from camera_node.picamera import Picamera2Source

    return lambda sinks: Picamera2Source(sinks, **settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Record into ``--root`` until SIGTERM or SIGINT, then store the open segment."""
    from camera_node.keys import load_or_create_key

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    key = load_or_create_key(args.key or args.root.resolve().parent / "camera.key")
    store = SegmentStore(args.root, key)
    quota = int(args.quota_mb * 1e6) if args.quota_mb is not None else None
    retention = Retention(store, max_age_s=args.max_age_days * 86400, quota_bytes=quota,
                          min_free_bytes=int(args.min_free_mb * 1e6))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Recorder(_factory(args), store, retention, segment_s=args.segment_s) as recorder:
        recorder.start()
        stop.wait()
        log.info("stopping: %s", recorder.status())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
