"""Sound as the node plays it: 48 kHz mono signed 16-bit little-endian samples.

No numpy on the node (it would be a quarter of a speaker's memory): a
:class:`Pcm` is one or more byte segments (an attention tone, then the
bulletin) read in blocks by frame position. The controller's renditions
are WAV files of exactly this format; they are mapped from disk, not read
into memory. Anything else is decoded with miniaudio. Software volume is
``audioop.mul`` (C; the standard library up to Python 3.12, the
``audioop-lts`` package from 3.13).
"""

from __future__ import annotations

import io
import mmap
import pathlib
import struct
import warnings
import wave

with warnings.catch_warnings():  # deprecated in 3.11-3.12 only because it moves to PyPI
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 48_000
WIDTH = 2  # bytes per sample (mono, 16-bit)


class Pcm:
    """Samples in one or more segments, addressed in frames.

    ``len(pcm)`` is the number of frames; ``pcm.read(pos, n)`` returns the
    bytes of frames ``pos .. pos + n`` (fewer at the end), across segments.
    """

    def __init__(self, *segments: bytes | bytearray | memoryview | mmap.mmap):
        self.segments = [memoryview(s).cast("B") for s in segments if len(s)]
        self._frames = sum(len(s) for s in self.segments) // WIDTH

    def __len__(self) -> int:
        return self._frames

    def __add__(self, other: Pcm) -> Pcm:
        return Pcm(*self.segments, *other.segments)

    def read(self, pos: int, frames: int) -> bytes:
        start, stop = pos * WIDTH, min(pos + frames, self._frames) * WIDTH
        parts, offset = [], 0
        for segment in self.segments:
            end = offset + len(segment)
            if end > start and offset < stop:
                parts.append(segment[max(start - offset, 0):min(stop, end) - offset])
            offset = end
            if offset >= stop:
                break
        return b"".join(parts)

    def tobytes(self) -> bytes:
        return b"".join(self.segments)


def scaled(block: bytes, volume: float) -> bytes:
    """``block`` at ``volume`` (0..1; 1 returns it as it is), clipped, never wrapped."""
    return block if volume == 1.0 else audioop.mul(block, WIDTH, volume)


def wav_samples(path: pathlib.Path) -> Pcm | None:
    """The samples of a 48 kHz mono 16-bit PCM WAV (the controller's renditions)
    mapped from disk, not read into memory; None for any other file."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        fmt_ok = False
        while chunk := f.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = f.read(size + (size & 1))
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
                fmt_ok = (tag, channels, rate, bits) == (1, 1, RATE, 16)
            elif name == b"data":
                if not fmt_ok:
                    return None
                offset = f.tell()
                frames = min(size, path.stat().st_size - offset) // WIDTH
                if frames == 0:
                    return Pcm()
                # The mapping outlives an eviction of the file (Linux keeps it until unmapped).
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                return Pcm(memoryview(mapped)[offset:offset + frames * WIDTH])
            else:
                f.seek(size + (size & 1), 1)
    return None


def decode_pcm(data: bytes) -> Pcm:
    """48 kHz mono int16 samples of an audio file. The controller's renditions are exactly
    that as WAV, read with the standard library; anything else goes through miniaudio
    (imported only then: it and its cffi library cost a small node ~9 MB). A card's
    wheelhouse leaves miniaudio out (PyPI has no ARM Linux wheel of it), so such a node
    plays only the controller's WAV renditions and says so for anything else."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, WIDTH):
                return Pcm(w.readframes(w.getnframes()))
    except (wave.Error, EOFError):
        pass
    try:
        import miniaudio
    except ImportError:
        raise ValueError("audio is not 48 kHz mono 16-bit WAV (the controller's renditions)"
                         " and miniaudio, which would decode it, is not installed") from None
    decoded = miniaudio.decode(data, output_format=miniaudio.SampleFormat.SIGNED16,
                               nchannels=1, sample_rate=RATE)
    return Pcm(decoded.samples.tobytes())
