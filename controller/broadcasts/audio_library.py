"""The audio library: uploads checked, measured and loudness-normalised for the speakers.

An upload (MP3, WAV, OGG Vorbis or FLAC) is decoded with miniaudio and
refused if it is not audio, is cut off (WAV and FLAC short of their
declared length; MP3 and Ogg by their own framing, see
:mod:`controller.broadcasts.audio_truncation`), lasts longer than the cap
(three hours by default), is silent or too short to measure. Its
integrated loudness is measured with the ITU-R BS.1770-4 / EBU R128 meter
(K-weighting, 400 ms blocks, absolute and relative gates) and a rendition
is written at the target (−16 LUFS by default; a look-ahead limiter keeps
peaks under −1 dBFS) as 48 kHz mono 16-bit WAV: hamlet horns are mono,
and one format lets every node play without resampling. Renditions are
stored content-addressed (by sha256) and served to the nodes by the web
layer.

Everything streams: the file is decoded in chunks of a few seconds, once
to measure it and once more for each rendition pass, so memory stays at a
few tens of MB whatever the length. The duration is checked against the
cap before anything is decoded, and again while decoding, so a small file
that would expand to days of audio (a "decode bomb") is refused early.
Uploads are processed one at a time (:meth:`AudioLibrary.slot`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import mmap
import os
import pathlib
import shutil
import struct
import tempfile
import threading
import time
import wave
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import sqlite_utils

from controller.broadcasts.audio_truncation import mp3_truncation, ogg_truncation
from controller.db.writer import Writer
from controller.errors import Busy, InvalidRequest, NotFound

log = logging.getLogger(__name__)

RATE = 48_000
TARGET_LUFS = -16.0
PEAK_CEILING_DBFS = -1.0
SILENCE_DBFS = -60.0
MIN_DURATION_S = 0.5
MAX_DURATION_S = 3 * 3600
MAX_UPLOAD_BYTES = 200 << 20
FORMATS = ("mp3", "wav", "ogg", "flac")
CHUNK_FRAMES = 4 * RATE  # 4 s of 48 kHz float64 is 1.5 MB a copy
BUSY_RETRY_S = 30
RENDER_PASSES = 3

# K-weighting at 48 kHz as pyloudnorm designs it (RBJ biquads: a +4 dB high
# shelf at 1500 Hz, Q 1/√2, then a high pass at 38 Hz, Q 0.5), so the two
# meters agree; (b, a) per stage.
_K_WEIGHTING = (
    ((1.5351828863637502, -2.691804030199196, 1.198426263333146),
     (1.0, -1.6906995865986896, 0.7325047060963897)),
    ((0.9950442970178917, -1.9900885940357833, 0.9950442970178917),
     (1.0, -1.990076284018423, 0.9901009040531438)),
)
_HOP = RATE // 10  # 100 ms: gating blocks are 400 ms, overlapping by 75 %
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0


class AudioError(InvalidRequest):
    """An upload that cannot be used as a broadcast; the message says why."""


class AudioBusy(Busy):
    """Another upload is being processed; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: float = BUSY_RETRY_S):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def sniff_format(data: bytes) -> str:
    """The container from the first bytes: ``wav``, ``flac``, ``ogg`` or ``mp3``."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    raise AudioError("not an audio file: expected MP3, WAV, OGG Vorbis or FLAC "
                     f"(the file starts with {data[:8]!r})")


def check_framing(data: bytes | mmap.mmap, fmt: str) -> None:
    """Refuse an MP3 or Ogg file whose frames or pages show it was cut off.

    Decoders play what is there without complaint, so this runs first; WAV
    and FLAC are checked against their declared length after decoding.
    """
    checks = {"mp3": mp3_truncation, "ogg": ogg_truncation}
    problem = checks[fmt](data) if fmt in checks else None  # type: ignore[arg-type]
    if problem:
        raise AudioError(f"the {fmt.upper()} file is truncated: {problem}")


def _clock(seconds: float) -> str:
    """``h:mm:ss``, the way people read a programme's length."""
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _wav_declared_s(data: bytes | mmap.mmap) -> float | None:
    """Seconds the WAV header's ``fmt `` and ``data`` chunks declare, if they do."""
    pos = 12
    channels = width = rate = 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 24 <= len(data):
            channels, rate, _byterate, _align, bits = struct.unpack(
                "<HIIHH", data[pos + 10:pos + 24])
            width = bits // 8
        elif chunk == b"data" and channels and width and rate:
            return size // (channels * width) / rate
        pos += 8 + size + (size & 1)
    return None


def _file_info(path: str, fmt: str) -> Any:
    """miniaudio's idea of the file (frames, rate) without decoding it."""
    import miniaudio
    readers = {"wav": miniaudio.wav_get_file_info, "flac": miniaudio.flac_get_file_info,
               "mp3": miniaudio.mp3_get_file_info, "ogg": miniaudio.vorbis_get_file_info}
    return readers[fmt](path)


@dataclass(frozen=True)
class Source:
    """An upload on disk whose container was checked: what it declares, not yet decoded."""

    path: pathlib.Path
    fmt: str
    declared_s: float | None  # the length WAV and FLAC headers give, to spot a cut
    estimated_s: float  # what the container says or its frames add up to


def open_source(path: str | os.PathLike[str],
                max_duration_s: float = MAX_DURATION_S) -> Source:
    """Sniff, check the framing and refuse a file that says it lasts longer than the cap."""
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        fmt = sniff_format(f.read(12))
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            check_framing(data, fmt)
            wav_s = _wav_declared_s(data) if fmt == "wav" else None
    source = _with_duration(path, fmt, wav_s)
    if source.estimated_s > max_duration_s:
        raise AudioError(f"the audio lasts {_clock(source.estimated_s)}: "
                         f"the limit is {_clock(max_duration_s)}")
    return source


def _with_duration(path: pathlib.Path, fmt: str, wav_s: float | None) -> Source:
    """The source with the duration its container declares or its frames add up to."""
    import miniaudio
    try:
        info = _file_info(str(path), fmt)
    except miniaudio.MiniaudioError as exc:
        raise AudioError(f"the {fmt.upper()} file cannot be decoded ({exc}); "
                         "is it damaged or truncated?") from None
    found = info.num_frames / info.sample_rate if info.sample_rate else 0.0
    declared = {"wav": wav_s, "flac": found or None}.get(fmt)  # FLAC's 0 means unknown
    return Source(path, fmt, declared, max(found, declared or 0.0))


def pcm_chunks(source: Source, max_duration_s: float = MAX_DURATION_S,
               frames: int = CHUNK_FRAMES) -> Iterator[Any]:
    """The audio as 48 kHz mono float64 chunks of ``frames``, refused once past the cap.

    The cap is checked again here because a container can understate its
    length (or not state it: FLAC may say 0, meaning unknown); a second of
    grace covers decoder delay and resampling on a file just under the cap.
    """
    import miniaudio
    import numpy as np
    cap = int(max_duration_s * RATE) + RATE
    decoded = 0
    try:
        stream = miniaudio.stream_file(os.fspath(source.path), nchannels=1, sample_rate=RATE,
                                       output_format=miniaudio.SampleFormat.FLOAT32,
                                       frames_to_read=frames)
        with contextlib.closing(stream):
            for chunk in stream:
                decoded += len(chunk)
                if decoded > cap:
                    raise AudioError(f"the audio lasts more than {_clock(max_duration_s)}: "
                                     f"the limit is {_clock(max_duration_s)}")
                yield np.frombuffer(chunk, dtype=np.float32).astype(np.float64)
    except miniaudio.MiniaudioError as exc:
        raise AudioError(f"the {source.fmt.upper()} file cannot be decoded ({exc}); "
                         "is it damaged or truncated?") from None


def check_length(source: Source, frames: int) -> float:
    """Seconds decoded, refused if short of what the container declared or too short."""
    duration = frames / RATE
    declared = source.declared_s
    if declared and duration < declared * 0.99:
        raise AudioError(f"the {source.fmt.upper()} file is truncated: it declares "
                         f"{declared:.2f} s of audio but holds {duration:.2f} s")
    if duration < MIN_DURATION_S:
        raise AudioError(f"the audio lasts {duration:.2f} s: at least {MIN_DURATION_S} s needed")
    return duration


def decode(data: bytes, *, max_duration_s: float = MAX_DURATION_S) -> tuple[str, Any, float]:
    """Decode small in-memory audio to 48 kHz mono float samples, all at once;
    return (format, samples, duration). Uploads go through :meth:`AudioLibrary.add_file`."""
    import numpy as np
    with tempfile.TemporaryDirectory(prefix="audio-decode-") as tmp:
        path = pathlib.Path(tmp) / "upload"
        path.write_bytes(data)
        source = open_source(path, max_duration_s)
        chunks = list(pcm_chunks(source, max_duration_s))
    samples = np.concatenate(chunks) if chunks else np.zeros(0)
    return source.fmt, samples, check_length(source, len(samples))


class LoudnessMeter:
    """ITU-R BS.1770-4 integrated loudness of 48 kHz mono audio fed in chunks of any size.

    The K-weighting filters carry their state from chunk to chunk; only the
    energy of each 100 ms hop is kept (three hours is 108 000 floats), and
    the 400 ms gating blocks are sums of four hops.
    """

    def __init__(self) -> None:
        import numpy as np
        self._state = [np.zeros(2) for _ in _K_WEIGHTING]
        self._hops = array("d")
        self._partial, self._partial_n = 0.0, 0

    def feed(self, samples: Any) -> None:
        """Add the next samples (float, full scale 1.0)."""
        from scipy.signal import lfilter
        y = samples
        for i, (b, a) in enumerate(_K_WEIGHTING):
            y, self._state[i] = lfilter(b, a, y, zi=self._state[i])
        self._add_energy(y * y)

    def _add_energy(self, squares: Any) -> None:
        """Sum squares into whole 100 ms hops, keeping the unfinished one."""
        head = min(len(squares), _HOP - self._partial_n)
        self._partial += float(squares[:head].sum())
        self._partial_n += head
        if self._partial_n < _HOP:
            return
        self._hops.append(self._partial)
        rest = squares[head:]
        whole = len(rest) // _HOP * _HOP
        self._hops.extend(rest[:whole].reshape(-1, _HOP).sum(axis=1).tolist())
        self._partial, self._partial_n = float(rest[whole:].sum()), len(rest) - whole

    def integrated(self) -> float:
        """Gated loudness in LUFS so far; −inf if nothing passes the absolute gate."""
        import numpy as np
        hops = np.array(self._hops, dtype=np.float64)
        if len(hops) < 4:
            return -math.inf
        blocks = np.convolve(hops, np.ones(4), mode="valid") / (4 * _HOP)
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10 * np.log10(blocks)
        loud = blocks[levels >= _ABSOLUTE_GATE_LUFS]
        if not len(loud):
            return -math.inf
        relative = -0.691 + 10 * math.log10(loud.mean()) + _RELATIVE_GATE_LU
        gated = blocks[(levels > relative) & (levels > _ABSOLUTE_GATE_LUFS)]
        return -0.691 + 10 * math.log10(gated.mean()) if len(gated) else -math.inf


def limit(x: Any, ceiling_dbfs: float = PEAK_CEILING_DBFS, window_s: float = 0.005) -> Any:
    """A look-ahead peak limiter: the gain needed around each peak, held and smoothed
    over ``window_s`` so it ducks without clicks, never letting a sample pass the ceiling."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    ceiling = 10 ** (ceiling_dbfs / 20)
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    if need.min() >= 1.0:
        return x
    width = max(1, int(window_s * RATE))
    gain = uniform_filter1d(minimum_filter1d(need, size=4 * width + 1), size=2 * width + 1)
    return x * np.minimum(gain, need)


def limit_stream(chunks: Iterable[Any], ceiling_dbfs: float = PEAK_CEILING_DBFS,
                 window_s: float = 0.005) -> Iterator[Any]:
    """:func:`limit` over a stream of chunks, giving what it gives on the whole array.

    The filters reach three windows either side of a sample, so each chunk
    is limited with six windows of the audio before it as context and its
    last six held back until the next arrives; the first and last chunks
    keep the real edges, as on the whole array.
    """
    import numpy as np
    margin = 6 * max(1, int(window_s * RATE))
    before = held = np.zeros(0)
    for chunk in chunks:
        held = np.concatenate([held, chunk])
        if len(held) <= margin:
            continue
        buf = np.concatenate([before, held])
        yield limit(buf, ceiling_dbfs, window_s)[len(before):len(buf) - margin]
        before, held = buf[max(0, len(buf) - 2 * margin):len(buf) - margin], held[-margin:]
    if len(held):
        yield limit(np.concatenate([before, held]), ceiling_dbfs, window_s)[len(before):]


def _pcm16(samples: Any) -> bytes:
    """Float samples in [-1, 1] as little-endian 16-bit PCM."""
    import numpy as np
    return np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()


def wav_bytes(samples: Any) -> bytes:
    """48 kHz mono 16-bit PCM WAV of float samples in [-1, 1], in memory (small clips)."""
    import io
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(_pcm16(samples))
    return out.getvalue()


class _HashingSink:
    """A file sink that hashes what passes through it, in order.

    :mod:`wave` seeks back only to patch a header whose length was not known
    in advance; if it ever does, the hash is taken from the file instead.
    """

    def __init__(self, f: BinaryIO):
        self.f, self.sha, self.rewound = f, hashlib.sha256(), False

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.rewound = True
        return self.f.seek(offset, whence)

    def flush(self) -> None:
        self.f.flush()

    def hexdigest(self) -> str:
        return _file_sha256(self.f.name) if self.rewound else self.sha.hexdigest()


def _file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read a megabyte at a time."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha.update(block)
    return sha.hexdigest()


@dataclass(frozen=True)
class Measured:
    """What the first pass over an upload found."""

    frames: int
    duration_s: float
    loudness_lufs: float


def measure(source: Source, max_duration_s: float = MAX_DURATION_S) -> Measured:
    """Decode once to measure: length, peak and integrated loudness; refuse the unusable."""
    import numpy as np
    meter, frames, peak = LoudnessMeter(), 0, 0.0
    for x in pcm_chunks(source, max_duration_s):
        meter.feed(x)
        frames += len(x)
        peak = max(peak, float(np.max(np.abs(x))) if len(x) else 0.0)
    duration = check_length(source, frames)
    if peak <= 10 ** (SILENCE_DBFS / 20):
        raise AudioError(f"the audio is silent (peak below {SILENCE_DBFS:.0f} dBFS)")
    loudness = meter.integrated()
    if not math.isfinite(loudness) or loudness < _ABSOLUTE_GATE_LUFS:
        raise AudioError("the audio is silent (integrated loudness below −70 LUFS)")
    return Measured(frames, duration, loudness)


@dataclass(frozen=True)
class Rendition:
    """A rendition pass written to a file: its loudness as measured while writing."""

    gain_db: float
    loudness_lufs: float
    sha256: str
    bytes: int


def render(source: Source, measured: Measured, gain_db: float, out: pathlib.Path,
           max_duration_s: float = MAX_DURATION_S) -> Rendition:
    """Decode again, apply ``gain_db`` and the limiter, and write the 48 kHz mono
    16-bit WAV to ``out`` (fsynced), hashing and metering it on the way."""
    meter, scale, written = LoudnessMeter(), 10 ** (gain_db / 20), 0
    with open(out, "wb") as f:
        sink = _HashingSink(f)
        with wave.open(sink, "wb") as w:  # type: ignore[call-overload]
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.setnframes(measured.frames)  # known: no header to patch afterwards
            for y in limit_stream(x * scale for x in pcm_chunks(source, max_duration_s)):
                meter.feed(y)
                w.writeframesraw(_pcm16(y))
                written += len(y)
        os.fsync(f.fileno())
        size = os.fstat(f.fileno()).st_size
    if written != measured.frames:
        raise AudioError(f"the {source.fmt.upper()} file changed while it was processed "
                         f"({measured.frames} samples, then {written})")
    return Rendition(gain_db, meter.integrated(), sink.hexdigest(), size)


def normalise_to(source: Source, measured: Measured, out: pathlib.Path,
                 target_lufs: float = TARGET_LUFS,
                 max_duration_s: float = MAX_DURATION_S) -> Rendition:
    """Render at ``target_lufs``: limiting lowers loudness a little, so the output is
    measured as it is written and, if more than 0.1 LU off, rendered again with the
    gain corrected (at most :data:`RENDER_PASSES` passes)."""
    gain_db = target_lufs - measured.loudness_lufs
    for attempt in range(1, RENDER_PASSES + 1):
        done = render(source, measured, gain_db, out, max_duration_s)
        error = target_lufs - done.loudness_lufs
        log.debug("render pass %s: gain %+.2f dB, %.2f LUFS", attempt, gain_db,
                  done.loudness_lufs)
        if abs(error) <= 0.1:
            break
        gain_db += error
    return done


class AudioLibrary:
    """Stores uploads and their renditions under ``directory``; rows in ``audio``.

    Uploads are processed one at a time: :meth:`add_file` takes the
    library's slot, or is told the caller holds it already (the web layer
    takes the slot with :meth:`slot` before it reads an upload's body, so a
    second upload is refused at once rather than spooled to disk).
    """

    def __init__(self, writer: Writer, directory: str | pathlib.Path, *,
                 target_lufs: float = TARGET_LUFS, max_duration_s: float = MAX_DURATION_S,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES):
        self.writer = writer
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.target_lufs = target_lufs
        self.max_duration_s = max_duration_s
        self.max_upload_bytes = max_upload_bytes
        self._slot = threading.Semaphore(1)
        self._slot_taken = False
        self.remove_leftovers()

    def remove_leftovers(self, older_than_s: float = 3600.0) -> int:
        """Delete temporary files and folders of uploads and renditions that a killed
        process left behind (untouched for ``older_than_s``); return how many.

        An upload in progress writes to its files all the time, so an hour of
        silence means nobody will finish it.
        """
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.directory.glob(".*"):
            if not path.name.startswith((".upload-", ".render-")):
                continue
            try:
                if path.lstat().st_mtime > cutoff:
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.warning("removed %s leftover upload file(s) from %s", removed, self.directory)
        return removed

    def rendition_path(self, sha256: str) -> pathlib.Path:
        """Where the rendition with this sha256 lives; NotFound for a malformed hash."""
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise NotFound(f"no audio file {sha256!r}")
        return self.directory / f"{sha256}.wav"

    def slot(self, wait_s: float = 2.0) -> SlotHold:
        """``with library.slot(): ...``: hold the library's one processing slot
        (AudioBusy if it is not free within ``wait_s``); inside, call
        ``add_file(..., slot_held=True)``."""
        return SlotHold(self, wait_s)

    def acquire_slot(self, wait_s: float = 2.0) -> None:
        """Take the processing slot, for a caller that cannot use ``with`` (an async
        handler acquiring in a worker thread); give it back with :meth:`release_slot`."""
        if not self._slot.acquire(timeout=wait_s):
            raise AudioBusy(f"another audio upload is being processed (waited {wait_s:g} s); "
                            f"try again in {BUSY_RETRY_S} s")
        self._slot_taken = True

    def release_slot(self) -> None:
        """Give back the slot taken by :meth:`acquire_slot` or :meth:`slot`."""
        if not self._slot_taken:
            raise RuntimeError("release_slot() called but the audio slot is not held")
        self._slot_taken = False
        self._slot.release()

    def add_file(self, path: str | os.PathLike[str], title: str, filename: str | None = None,
                 *, slot_held: bool = False) -> dict[str, Any]:
        """Check, measure and normalise the audio file at ``path``; return its record.

        Memory stays bounded whatever the file's length. Takes the slot
        (AudioBusy if another upload holds it for 2 s) unless ``slot_held``
        says the caller is inside :meth:`slot`. The file itself is left alone.
        """
        if not slot_held:
            with self.slot():
                return self._add_file(pathlib.Path(path), title, filename)
        if not self._slot_taken:
            raise RuntimeError("add_file(slot_held=True) called outside AudioLibrary.slot()")
        return self._add_file(pathlib.Path(path), title, filename)

    def add(self, data: bytes, title: str, filename: str | None = None) -> dict[str, Any]:
        """:meth:`add_file` for an upload already in memory (tools, tests)."""
        self._check_size(len(data))
        fd, name = tempfile.mkstemp(dir=self.directory, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return self.add_file(name, title, filename)
        finally:
            os.unlink(name)

    def _add_file(self, path: pathlib.Path, title: str, filename: str | None) -> dict[str, Any]:
        """The work of :meth:`add_file`, with the slot held."""
        if not title or not isinstance(title, str):
            raise AudioError("an audio upload needs a title")
        self._check_size(path.stat().st_size)
        source = open_source(path, self.max_duration_s)
        measured = measure(source, self.max_duration_s)
        done = self._store_rendition(source, measured)
        record = {"title": title, "filename": filename, "format": source.fmt,
                  "source_sha256": _file_sha256(path), "source_bytes": path.stat().st_size,
                  "duration_s": round(measured.duration_s, 3),
                  "loudness_lufs": round(measured.loudness_lufs, 2),
                  "gain_db": round(done.gain_db, 2), "target_lufs": self.target_lufs,
                  "sha256": done.sha256, "bytes": done.bytes, "created": time.time()}
        record["id"] = self.writer.call(lambda db: _insert(db, record))
        log.info("audio %s (%s) added: %.1f s, %.1f LUFS, gain %+.1f dB", record["id"],
                 title, measured.duration_s, measured.loudness_lufs, done.gain_db)
        return record

    def _check_size(self, size: int) -> None:
        if size > self.max_upload_bytes:
            raise AudioError(f"the file is {size} bytes: the limit is {self.max_upload_bytes}")

    def _store_rendition(self, source: Source, measured: Measured) -> Rendition:
        """Render into a temporary file beside the library, then move it to its
        content address; the temporary file goes in every case."""
        fd, name = tempfile.mkstemp(dir=self.directory, prefix=".render-", suffix=".tmp")
        os.close(fd)
        tmp = pathlib.Path(name)
        try:
            done = normalise_to(source, measured, tmp, self.target_lufs, self.max_duration_s)
            os.replace(tmp, self.rendition_path(done.sha256))
            return done
        finally:
            tmp.unlink(missing_ok=True)


class SlotHold:
    """The library's processing slot, taken on entering a ``with`` block and given back
    on leaving it (never by garbage collection: a caller may enter here and release with
    :meth:`AudioLibrary.release_slot`)."""

    def __init__(self, library: AudioLibrary, wait_s: float):
        self.library, self.wait_s = library, wait_s

    def __enter__(self) -> None:
        self.library.acquire_slot(self.wait_s)

    def __exit__(self, *exc: object) -> None:
        self.library.release_slot()


def _insert(db: sqlite_utils.Database, record: dict[str, Any]) -> int:
    """One row in ``audio``; its id."""
    cursor = db.execute(
        "INSERT INTO audio (title, filename, format, source_sha256, source_bytes,"
        " duration_s, loudness_lufs, gain_db, target_lufs, sha256, bytes, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(record.values()))
    return int(cursor.lastrowid or 0)


_COLUMNS = ("id", "title", "filename", "format", "source_sha256", "source_bytes", "duration_s",
            "loudness_lufs", "gain_db", "target_lufs", "sha256", "bytes", "created")


def list_audio(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM audio ORDER BY id DESC").fetchall()
    return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]


def get_audio(db: sqlite_utils.Database, audio_id: int | str) -> dict[str, Any]:
    row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM audio WHERE id = ?",
                     (audio_id,)).fetchone()
    if row is None:
        raise NotFound(f"no audio {audio_id!r} in the library")
    return dict(zip(_COLUMNS, row, strict=True))
