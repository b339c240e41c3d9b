"""Cutting the encoded stream into MPEG-TS segment files, at keyframes, in memory.

The :class:`Segmenter` is a frame sink. It starts a new segment only at a
keyframe once the current one is ``segment_s`` long (by the frames' own
timestamps), so every frame lands in exactly one segment and each segment
decodes alone (the keyframe carries SPS and PPS), as picamera2's
``SplittableOutput`` splits. The open segment is muxed as it arrives into an
MPEG-TS in RAM (about 30 MB for a minute of 1080p at 4 Mbit/s), then handed
to the store, which writes it whole in one sequential write: an SD card
prefers that, and a power cut leaves no partial file under a final name. A
crash loses the open segment only.

The TS carries each frame's real timestamp (microseconds rescaled to the TS
90 kHz clock), so consecutive files continue each other: ``ffprobe`` shows no
gap at a boundary but the one frame interval. (The TS clock wraps every 26.5
hours of timestamps; players and ffprobe unwrap it within a file, and the
manifest's ``pts`` keep the unwrapped microseconds.)

Writing happens on a thread of the segmenter's own, so a slow card does not
stall the encoder's thread; at most one finished segment waits for it.
"""

from __future__ import annotations

import fractions
import io
import logging
import mmap
import queue
import statistics
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from camera_node.frames import EncodedFrame

if TYPE_CHECKING:
    from camera_node.store import Segment

log = logging.getLogger(__name__)

_MICROSECONDS = fractions.Fraction(1, 1_000_000)
MIN_CAPACITY = 64 << 20  # a minute of 1080p at 8 Mbit/s


class SegmentTarget(Protocol):
    """Where finished segments go: a :class:`camera_node.store.SegmentStore`."""

    def add_segment(self, data: bytes | memoryview, meta: dict[str, Any]) -> Segment:
        """Store the segment's bytes whole; raise ``OSError`` if it could not be."""


def timing(pts: list[int], walls: tuple[float, float], default_step: int = 0) -> dict[str, Any]:
    """A segment's metadata from its frames' timestamps (µs) and first/last wall times.

    ``pts`` in the manifest is compact: first and last timestamps, the usual step
    between frames, and the gaps (``[frame index, frames missing]``) where the camera
    dropped frames; the TS file itself holds every timestamp.
    """
    deltas = [b - a for a, b in zip(pts, pts[1:], strict=False)]
    step = int(statistics.median(deltas)) if deltas else default_step
    gaps = [[i, round(d / step) - 1] for i, d in enumerate(deltas, 1)
            if step and d > step * 3 // 2]
    return {
        "start": walls[0],
        "end": walls[1] + step / 1_000_000,
        "frames": len(pts),
        "pts": {"first": pts[0], "last": pts[-1], "step": step, "gaps": gaps},
    }


class _Buffer:
    """The muxer's output file, in memory: an anonymous mapping. Only the pages written
    are resident, it never moves while it grows (a ``BytesIO`` reallocates, briefly
    holding two copies of a 30 MB segment), and closing it gives the memory straight
    back to the kernel rather than to a fragmented heap."""

    def __init__(self, capacity: int):
        self._map = mmap.mmap(-1, capacity)
        self.size = 0

    def write(self, data: bytes) -> int:
        n = len(data)
        if self.size + n > len(self._map):
            self._grow(self.size + n)
        self._map[self.size:self.size + n] = data
        self.size += n
        return n

    def _grow(self, need: int) -> None:
        bigger = mmap.mmap(-1, max(need, 2 * len(self._map)))
        with memoryview(self._map) as old:
            bigger.write(old[:self.size])
        self._map.close()
        self._map = bigger

    def view(self) -> memoryview:
        """What was written; release the view before :meth:`close`."""
        return memoryview(self._map)[:self.size]

    def close(self) -> None:
        self._map.close()


class _OpenSegment:
    """One segment being muxed into an in-memory MPEG-TS."""

    def __init__(self, capacity: int) -> None:
        import av

        self.buffer = _Buffer(capacity)
        self.container = av.open(self.buffer, "w", format="mpegts")
        # No size or rate given: the decoder (and ffprobe) read them from the SPS and
        # the timestamps.
        self.stream = self.container.add_stream("h264")
        self.pts: list[int] = []
        self.walls: tuple[float, float] = (0.0, 0.0)

    @property
    def first_pts(self) -> int:
        return self.pts[0]

    @property
    def last_pts(self) -> int:
        return self.pts[-1]

    def add(self, frame: EncodedFrame) -> None:
        import av

        packet = av.Packet(frame.data)
        packet.stream = self.stream
        packet.time_base = _MICROSECONDS
        packet.pts = packet.dts = frame.pts_us  # no B-frames: decode order is display order
        packet.is_keyframe = frame.keyframe
        self.container.mux(packet)
        self.walls = (self.walls[0] if self.pts else frame.wall, frame.wall)
        self.pts.append(frame.pts_us)

    def finish(self, default_step: int) -> tuple[_Buffer, dict[str, Any]]:
        self.container.close()
        return self.buffer, timing(self.pts, self.walls, default_step)

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # already broken: nothing of it is kept
            log.debug("discarding a broken segment", exc_info=True)
        self.buffer.close()


class Segmenter:
    """A frame sink that stores the stream as segments of about ``segment_s`` seconds.

    ``on_segment`` is called (on the writer thread) with each stored segment. A
    segment the store refuses (disk full, card failing) is dropped, counted in
    ``segments_lost`` with the reason in ``last_error``; recording goes on.
    """

    def __init__(self, store: SegmentTarget, *, segment_s: float = 60.0,
                 on_segment: Callable[[Segment], None] | None = None):
        if segment_s <= 0:
            raise ValueError(f"segment_s {segment_s}: expected a positive number of seconds")
        self.store = store
        self.segment_s = segment_s
        self.on_segment = on_segment
        self.frames_in = 0
        self.frames_skipped = 0  # before the first keyframe: undecodable alone
        self.segments_written = 0
        self.segments_lost = 0
        self.last_error: BaseException | None = None
        self.last_segment: Segment | None = None
        self._segment_us = round(segment_s * 1_000_000)
        self._step = 0
        self._last_size = 0
        self._open: _OpenSegment | None = None
        self._lock = threading.Lock()
        self._slot = threading.Semaphore(1)  # one finished segment waiting, at most
        self._queue: queue.Queue[tuple[_Buffer, dict[str, Any]] | None] = queue.Queue()
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="segment-writer",
                                        daemon=True)
        self._writer.start()

    # -- the sink -----------------------------------------------------------------------

    def outputframe(self, frame: EncodedFrame) -> None:
        """Take one frame; may block while the previous segment is still being written."""
        with self._lock:
            if self._closed:
                return
            self.frames_in += 1
            current = self._open
            if current is not None and frame.pts_us <= current.last_pts:
                self._finish()  # the camera restarted: its clock began again
                current = None
            if current is not None and frame.keyframe and self._long_enough(current, frame):
                self._finish()
                current = None
            if current is None:
                if not frame.keyframe:
                    self.frames_skipped += 1
                    return
                current = self._open = _OpenSegment(self._capacity())
            try:
                current.add(frame)
            except Exception as exc:  # a frame PyAV refuses: lose this segment, not the camera
                self._lose(exc)

    def _long_enough(self, current: _OpenSegment, frame: EncodedFrame) -> bool:
        """Whether ``current`` lasts ``segment_s`` (to half a frame: 30 frames of 33,333 µs
        make a second)."""
        half_frame = (frame.pts_us - current.last_pts) // 2
        return frame.pts_us - current.first_pts + half_frame >= self._segment_us

    def _capacity(self) -> int:
        """Address space for the next segment: twice the last one, 64 MB at least. Only
        what is written becomes resident, so room to spare costs nothing."""
        return max(MIN_CAPACITY, 2 * self._last_size)

    @property
    def open_frames(self) -> int:
        """Frames in the segment being filled (lost if the process is killed now)."""
        current = self._open
        return len(current.pts) if current is not None else 0

    def flush(self) -> None:
        """Close the open segment and wait until every finished one is stored."""
        with self._lock:
            if self._open is not None:
                self._finish()
        self._queue.join()

    def close(self) -> None:
        """Flush, then stop the writer thread; idempotent."""
        if self._closed:
            return
        self.flush()
        with self._lock:
            self._closed = True
        self._queue.put(None)
        self._writer.join()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- finishing and writing ----------------------------------------------------------

    def _finish(self) -> None:
        current, self._open = self._open, None
        assert current is not None
        try:
            data, meta = current.finish(self._step)
        except Exception as exc:
            current.discard()
            self._lose(exc)
            return
        self._step = meta["pts"]["step"] or self._step
        self._last_size = data.size
        self._slot.acquire()  # wait while the previous segment is still being written
        self._queue.put((data, meta))

    def _lose(self, exc: BaseException) -> None:
        log.exception("segment dropped: %s", exc)
        if self._open is not None:
            self._open.discard()
            self._open = None
        self.segments_lost += 1
        self.last_error = exc

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            try:
                self._write(*item)
            except Exception:  # the writer must outlive any one segment
                log.exception("writing a segment failed")
            finally:
                item = None  # the segment's bytes go now, not at the next one
                self._slot.release()
                self._queue.task_done()

    def _write(self, buffer: _Buffer, meta: dict[str, Any]) -> None:
        data = buffer.view()
        try:
            segment = self.store.add_segment(data, meta)
        except OSError as exc:
            log.error("segment of %d frames not stored: %s", meta["frames"], exc)
            self.segments_lost += 1
            self.last_error = exc
            return
        except Exception as exc:  # a bug must cost one segment, not the writer thread
            log.exception("segment of %d frames not stored", meta["frames"])
            self.segments_lost += 1
            self.last_error = exc
            return
        finally:
            data.release()
            try:
                buffer.close()
            except BufferError:  # still viewed from a kept traceback: unmapped when freed
                log.warning("a stored segment's buffer is still referenced")
        self.segments_written += 1
        self.last_error = None
        self.last_segment = segment
        if self.on_segment is not None:
            try:
                self.on_segment(segment)
            except Exception:  # the role's hook must not stop the recording
                log.exception("on_segment hook failed for seq %d", segment.seq)


def probe(data: bytes) -> dict[str, Any]:
    """What a stored segment holds, read back from the TS: frames, timestamps (µs) and
    whether it starts at a keyframe; for recovering a segment the manifest missed."""
    import av

    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        stream = container.streams.video[0]
        base = stream.time_base or fractions.Fraction(1, 90_000)
        pts, first_key = [], None
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            if first_key is None:
                first_key = bool(packet.is_keyframe)
            pts.append(round(packet.pts * base * 1_000_000))
    return {"pts": pts, "keyframe_first": bool(first_key)}
