"""The Raspberry Pi camera, through picamera2: the only module that imports it.

picamera2's ``H264Encoder`` uses the Pi 4's hardware encoder (V4L2,
``/dev/video11``); the Pi 5 has none, and there the same class encodes in
software through libav. Either way it calls ``outputframe`` on an ``Output``
with each encoded access unit; our adapter turns that into an
:class:`EncodedFrame` and hands it to our sinks. ``repeat=True`` puts SPS and
PPS before every keyframe and ``iperiod`` sets the keyframe interval, so any
segment cut at a keyframe decodes alone. Its timestamps (microseconds) count
from the encoder's first frame, so they begin again when the camera is
restarted; the segmenter starts a new segment there.

picamera2 is imported when a source is started, so the package imports (and
its tests run) on a machine without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from camera_node.errors import ConfigError, SourceError
from camera_node.frames import EncodedFrame, FrameSink, RateMeter

log = logging.getLogger(__name__)

STALL_S = 5.0  # no frame for this long after the start: the camera is taken as failed


class Picamera2Source:
    """The Pi camera module, ``width`` x ``height`` at ``fps``, H.264 at ``bitrate``."""

    def __init__(self, sinks: Iterable[FrameSink], *, width: int = 1920, height: int = 1080,
                 fps: int = 30, keyframe_interval_s: float = 1.0, bitrate: int = 4_000_000,
                 camera_num: int = 0):
        if fps <= 0 or keyframe_interval_s <= 0 or width <= 0 or height <= 0:
            raise ConfigError(f"camera {width}x{height} at {fps} fps, keyframe every "
                              f"{keyframe_interval_s} s: expected positive numbers")
        self.sinks = list(sinks)
        self.width, self.height, self.fps = width, height, fps
        self.iperiod = max(1, round(fps * keyframe_interval_s))
        self.bitrate, self.camera_num = bitrate, camera_num
        self.frames_encoded = 0
        self.frames_dropped = 0
        self._interval_us = 1_000_000 / fps
        self._last_pts: int | None = None
        self._last_frame = 0.0
        self._started = 0.0
        self._meter = RateMeter()
        self._error: BaseException | None = None
        self._picam2: Any = None
        self._encoder: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Open the camera and start encoding; raises :class:`SourceError` if it cannot."""
        from picamera2 import Picamera2
        from picamera2.encoders import H264Encoder

        try:
            self._picam2 = Picamera2(self.camera_num)
            config = self._picam2.create_video_configuration(
                main={"size": (self.width, self.height)},
                controls={"FrameRate": self.fps})
            self._picam2.configure(config)
            self._encoder = H264Encoder(bitrate=self.bitrate, repeat=True, iperiod=self.iperiod)
            self._started = self._last_frame = time.monotonic()
            self._picam2.start_encoder(self._encoder, _output_class()(self))
            self._picam2.start()
        except Exception as exc:
            self.close()
            raise SourceError(f"camera {self.camera_num} could not start: {exc}") from exc

    def close(self) -> None:
        """Stop encoding and release the camera; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        picam2, self._picam2 = self._picam2, None
        if picam2 is None:
            return
        for step in ("stop_encoder", "stop", "close"):
            try:
                getattr(picam2, step)()
            except Exception:  # a half-started camera: release what can be released
                log.debug("picamera2 %s failed", step, exc_info=True)

    def __enter__(self) -> Picamera2Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def measured_fps(self) -> float:
        return self._meter.rate(time.monotonic())

    @property
    def error(self) -> BaseException | None:
        """Set when the camera stopped sending frames (libcamera gives up silently)."""
        if self._error is None and self._picam2 is not None and not self._closed:
            if time.monotonic() - self._last_frame > STALL_S:
                self._error = SourceError(f"no frames from camera {self.camera_num} "
                                          f"for {STALL_S:.0f} s")
        return self._error

    def deliver(self, data: bytes, keyframe: bool, timestamp_us: int | None) -> None:
        """One encoded frame from picamera2's encoder thread, passed on to the sinks."""
        now = time.monotonic()
        pts = int(timestamp_us) if timestamp_us is not None else int(now * 1_000_000)
        if self._last_pts is not None and pts - self._last_pts > 1.5 * self._interval_us:
            self.frames_dropped += round((pts - self._last_pts) / self._interval_us) - 1
        self._last_pts, self._last_frame = pts, now
        frame = EncodedFrame(bytes(data), keyframe, pts, _wall_of(pts, now))
        for sink in self.sinks:
            sink.outputframe(frame)
        self.frames_encoded += 1
        self._meter.tick(now)


def _wall_of(pts_us: int, now_monotonic: float) -> float:
    """The wall time a frame was captured. Recent picamera2 gives timestamps counted from
    the encoder's first frame: then it is the time the frame arrives (a frame or two of
    encoder delay). Older releases gave the sensor's own, on the kernel's monotonic
    clock: then the encoder's delay is taken off."""
    delay = now_monotonic - pts_us / 1_000_000
    return time.time() - delay if 0 <= delay < 5 else time.time()


def _output_class() -> type:
    """picamera2's ``Output`` subclass, made when picamera2 is importable."""
    from picamera2.outputs import Output

    class _Adapter(Output):  # type: ignore[misc, valid-type]
        def __init__(self, source: Picamera2Source):
            super().__init__()
            self.source = source

        def outputframe(self, frame: Any, keyframe: bool = True, timestamp: Any = None,
                        packet: Any = None, audio: bool = False) -> None:
            if audio:  # the desk cameras never record sound
                return
            self.source.deliver(frame, keyframe, timestamp)

    return _Adapter
