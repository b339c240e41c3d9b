"""A camera without a camera: drawn frames, encoded with libx264 through PyAV.

For tests, benchmarks and the simulator. The stream has the shape a Pi's
encoder gives: H.264 Annex-B, no B-frames (so presentation order is decode
order), a keyframe every ``keyframe_interval_s`` carrying SPS and PPS
(``repeat-headers``), so any segment that starts at a keyframe decodes alone.
No audio, ever.
"""

from __future__ import annotations

import fractions
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from camera_node.errors import ConfigError
from camera_node.frames import EncodedFrame, FrameSink, RateMeter

log = logging.getLogger(__name__)

_BAR_CELLS = 32  # bits of the frame number drawn across the top: a visible timestamp


class SyntheticSource:
    """Pushes drawn, encoded frames to ``sinks``: a moving diagonal pattern with the
    frame number as a bar of black and white cells, and, with ``noise``, a patch of
    random pixels so the encoder spends its whole bitrate (as a dark, grainy room does).

    ``realtime=True`` paces frames at ``fps`` on the monotonic clock; a frame whose
    slot passed more than one interval ago is skipped and counted in ``frames_dropped``
    (its timestamp is missing from the stream, as with a real camera). ``realtime=False``
    encodes as fast as it can, timestamps still ``1/fps`` apart, wall times following
    them from ``clock()`` at the start.
    """

    def __init__(self, sinks: Iterable[FrameSink], *, width: int = 1280, height: int = 720,
                 fps: int = 30, keyframe_interval_s: float = 1.0, bitrate: int = 2_000_000,
                 clock: Callable[[], float] = time.time, realtime: bool = True,
                 noise: bool = False, max_frames: int | None = None,
                 preset: str = "ultrafast"):
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ConfigError(f"frame size {width}x{height}: expected positive even numbers")
        if fps <= 0 or keyframe_interval_s <= 0:
            raise ConfigError(f"fps {fps}, keyframe interval {keyframe_interval_s} s: "
                              "expected positive numbers")
        self.sinks = list(sinks)
        self.width, self.height, self.fps = width, height, fps
        self.gop = max(1, round(fps * keyframe_interval_s))
        self.bitrate, self.clock, self.realtime = bitrate, clock, realtime
        self.noise, self.max_frames, self.preset = noise, max_frames, preset
        self.interval_us = round(1_000_000 / fps)
        self.frames_encoded = 0
        self.frames_dropped = 0
        self._index = 0
        self._base_us = time.monotonic_ns() // 1000
        self._wall0: float | None = None
        self._codec: Any = None
        self._canvas: Any = None
        self._pattern: Any = None
        self._rng: Any = None
        self._meter = RateMeter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Encode on a thread of its own until :meth:`close` (or ``max_frames``)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="synthetic-camera", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop and join the thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> SyntheticSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def error(self) -> BaseException | None:
        """What killed the encoding thread, if anything did."""
        return self._error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def measured_fps(self) -> float:
        """Frames encoded per second over the last two seconds."""
        return self._meter.rate(time.monotonic())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (``max_frames`` reached); True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- encoding -----------------------------------------------------------------------

    def encode_frames(self, n: int) -> int:
        """Encode the next ``n`` frames on the calling thread, as fast as possible (the
        timestamps still ``1/fps`` apart); return how many were handed to the sinks."""
        before = self.frames_encoded
        for _ in range(n):
            self._emit(self._index, self._wall_of(self._index))
            self._index += 1
        return self.frames_encoded - before

    def _run(self) -> None:
        try:
            if self.realtime:
                self._run_realtime()
            else:
                while not self._stop.is_set() and not self._done():
                    self.encode_frames(1)
        except BaseException as exc:  # the recorder reads .error and restarts the source
            log.exception("synthetic camera failed")
            self._error = exc

    def _run_realtime(self) -> None:
        interval = 1 / self.fps
        start = time.monotonic() - self._index * interval
        while not self._stop.is_set() and not self._done():
            late = time.monotonic() - (start + self._index * interval)
            if late < 0:
                if self._stop.wait(-late):
                    return
            elif late > interval:  # missed slots: those frames were never captured
                missed = int(late / interval)
                self.frames_dropped += missed
                self._index += missed
            self._emit(self._index, self.clock())
            self._index += 1

    def _done(self) -> bool:
        return self.max_frames is not None and self.frames_encoded >= self.max_frames

    def _wall_of(self, index: int) -> float:
        if self._wall0 is None:
            self._wall0 = self.clock()
        return self._wall0 + index * self.interval_us / 1_000_000

    def _emit(self, index: int, wall: float) -> None:
        import av

        pts = self._base_us + index * self.interval_us
        frame = av.VideoFrame.from_ndarray(self._draw(index), format="yuv420p")
        frame.pts = pts
        for packet in self._encoder().encode(frame):
            out = EncodedFrame(bytes(packet), bool(packet.is_keyframe), int(packet.pts), wall)
            for sink in self.sinks:
                sink.outputframe(out)
            self.frames_encoded += 1
            self._meter.tick(time.monotonic())

    def _encoder(self) -> Any:
        if self._codec is None:
            import av

            ctx = av.CodecContext.create("libx264", "w")
            ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
            ctx.time_base = fractions.Fraction(1, 1_000_000)
            ctx.framerate = fractions.Fraction(self.fps, 1)
            ctx.gop_size, ctx.max_b_frames, ctx.bit_rate = self.gop, 0, self.bitrate
            # Closed GOPs of exactly ``gop`` frames, SPS/PPS before every keyframe,
            # no lookahead: each packet comes out of encode() with its own frame.
            ctx.options = {
                "preset": self.preset, "tune": "zerolatency",
                "x264-params": f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:"
                               "bframes=0:repeat-headers=1",
            }
            ctx.open()
            self._codec = ctx
        return self._codec

    def _draw(self, index: int) -> Any:
        import numpy as np

        w, h = self.width, self.height
        if self._canvas is None:
            ys, xs = np.mgrid[0:h, 0:w]
            self._pattern = ((xs + 2 * ys) % 256).astype(np.uint8)
            self._canvas = np.full((h * 3 // 2, w), 128, np.uint8)  # grey chroma
            self._rng = np.random.default_rng(8)
        canvas, bar = self._canvas, max(2, h // 16)
        shift = (index * max(1, w // (self.fps * 4))) % w  # crosses the frame in 4 s
        canvas[:h] = np.roll(self._pattern, shift, axis=1)
        cell = w // _BAR_CELLS
        for bit in range(_BAR_CELLS):
            canvas[:bar, bit * cell:(bit + 1) * cell] = 235 if index >> bit & 1 else 16
        if self.noise:
            canvas[bar:h // 2, : w // 2] = self._rng.integers(
                0, 256, (h // 2 - bar, w // 2), dtype=np.uint8)
        return canvas
