"""What flows from a camera to the recorder: encoded frames, pushed to sinks.

The shape is picamera2's: an encoder calls ``outputframe`` on each of a list
of outputs. A sink that wraps other sinks (the segmenter, a hasher, a ring
buffer) is a sink too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EncodedFrame:
    """One H.264 access unit (Annex-B, start codes; a keyframe carries SPS and PPS)."""

    data: bytes
    keyframe: bool
    #: The frame's timestamp on a monotonic clock, in microseconds.
    pts_us: int
    #: Wall-clock time (unix seconds) when the frame was captured.
    wall: float


class FrameSink(Protocol):
    """Anything an encoder can hand frames to."""

    def outputframe(self, frame: EncodedFrame) -> None:
        """Take one frame; called on the encoder's thread, so keep it quick."""


class Source(Protocol):
    """A camera (real or synthetic) pushing frames to its sinks from its own thread."""

    #: Frames handed to the sinks so far.
    frames_encoded: int
    #: Frames the camera could not capture in time (a gap in the timestamps).
    frames_dropped: int

    @property
    def measured_fps(self) -> float:
        """Frames encoded per second, measured over the last seconds."""

    @property
    def error(self) -> BaseException | None:
        """Why the source stopped, if it died; ``None`` while it runs (or was closed)."""

    def start(self) -> None:
        """Start producing frames."""

    def close(self) -> None:
        """Stop; idempotent."""


class RateMeter:
    """Events per second over a sliding window, cheap enough to call per frame."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        while self._times[0] < now - self.window_s:
            self._times.popleft()

    def rate(self, now: float) -> float:
        """The rate over the window ending ``now``; 0 when fewer than two events fell in it."""
        recent = [t for t in self._times if t >= now - self.window_s]
        if len(recent) < 2:
            return 0.0
        return round((len(recent) - 1) / max(recent[-1] - recent[0], 1e-9), 2)
