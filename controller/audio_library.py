"""The audio library: uploads checked, measured and loudness-normalised for the speakers.

An upload (MP3, WAV, OGG Vorbis or FLAC) is decoded with miniaudio and
refused if it is not audio, is cut off (WAV and FLAC short of their
declared length; MP3 and Ogg by their own framing, see
:mod:`controller.audio_truncation`), is silent or too short to measure.
Its integrated loudness is measured with the ITU-R BS.1770-4 / EBU R128
meter (pyloudnorm: K-weighting, 400 ms blocks, absolute and relative
gates) and a rendition is written at the target (−16 LUFS by default; a
look-ahead limiter keeps peaks under −1 dBFS) as 48 kHz mono 16-bit WAV:
hamlet horns are mono, and one format lets every node play without
resampling. Renditions are stored content-addressed (by sha256) and
served to nodes by :mod:`controller.speaker_api`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pathlib
import struct
import time
import wave
from typing import Any

import sqlite_utils

from controller.audio_truncation import mp3_truncation, ogg_truncation
from controller.errors import InvalidRequest, NotFound
from controller.writer import Writer

log = logging.getLogger(__name__)

RATE = 48_000
TARGET_LUFS = -16.0
PEAK_CEILING_DBFS = -1.0
SILENCE_DBFS = -60.0
MIN_DURATION_S = 0.5
MAX_UPLOAD_BYTES = 200 << 20
FORMATS = ("mp3", "wav", "ogg", "flac")


class AudioError(InvalidRequest):
    """An upload that cannot be used as a broadcast; the message says why."""


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


def check_framing(data: bytes, fmt: str) -> None:
    """Refuse an MP3 or Ogg file whose frames or pages show it was cut off.

    Decoders play what is there without complaint, so this runs first; WAV
    and FLAC are checked against their declared length after decoding.
    """
    checks = {"mp3": mp3_truncation, "ogg": ogg_truncation}
    problem = checks[fmt](data) if fmt in checks else None
    if problem:
        raise AudioError(f"the {fmt.upper()} file is truncated: {problem}")


def _declared_frames(data: bytes, fmt: str) -> int | None:
    """Frames the container says it holds, where it says so (WAV, FLAC)."""
    import miniaudio
    if fmt == "flac":
        return int(miniaudio.flac_get_info(data).num_frames) or None
    if fmt != "wav":
        return None
    pos = 12
    channels = width = 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            channels, _rate, _byterate, _align, bits = struct.unpack(
                "<HIIHH", data[pos + 10:pos + 24])
            width = bits // 8
        elif chunk == b"data" and channels and width:
            return int(size // (channels * width))
        pos += 8 + size + (size & 1)
    return None


def decode(data: bytes) -> tuple[str, Any, float]:
    """Decode to 48 kHz mono float samples; return (format, samples, source duration)."""
    import miniaudio
    import numpy as np
    fmt = sniff_format(data)
    check_framing(data, fmt)
    try:
        info = miniaudio.decode(data, output_format=miniaudio.SampleFormat.FLOAT32,
                                nchannels=1, sample_rate=RATE)
        native = _native_info(data, fmt)
    except miniaudio.MiniaudioError as exc:
        raise AudioError(f"the {fmt.upper()} file cannot be decoded ({exc}); "
                         "is it damaged or truncated?") from None
    samples = np.frombuffer(info.samples, dtype=np.float32).astype(np.float64)
    declared = _declared_frames(data, fmt)
    if declared and native and native.num_frames < declared * 0.99:
        raise AudioError(f"the {fmt.upper()} file is truncated: it declares "
                         f"{declared / native.sample_rate:.2f} s of audio but holds "
                         f"{native.num_frames / native.sample_rate:.2f} s")
    duration = len(samples) / RATE
    if duration < MIN_DURATION_S:
        raise AudioError(f"the audio lasts {duration:.2f} s: at least {MIN_DURATION_S} s needed")
    return fmt, samples, duration


def _native_info(data: bytes, fmt: str) -> Any:
    import miniaudio
    readers = {"wav": miniaudio.wav_read_s16, "flac": miniaudio.flac_read_s16}
    return readers[fmt](data) if fmt in readers else None


def normalise(samples: Any, target_lufs: float = TARGET_LUFS) -> tuple[Any, float, float]:
    """Bring to ``target_lufs`` integrated with peaks under −1 dBFS; return
    (scaled samples, measured loudness of the source, gain applied in dB)."""
    import numpy as np
    import pyloudnorm
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak <= 10 ** (SILENCE_DBFS / 20):
        raise AudioError(f"the audio is silent (peak below {SILENCE_DBFS:.0f} dBFS)")
    meter = pyloudnorm.Meter(RATE)
    loudness = float(meter.integrated_loudness(samples))
    if not np.isfinite(loudness) or loudness < -70:
        raise AudioError("the audio is silent (integrated loudness below −70 LUFS)")
    gain_db = target_lufs - loudness
    out = samples
    for _ in range(3):  # limiting lowers loudness a little: measure and correct again
        out = limit(samples * 10 ** (gain_db / 20))
        error = target_lufs - float(meter.integrated_loudness(out))
        if abs(error) < 0.1:
            break
        gain_db += error
    return out, loudness, gain_db


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


def wav_bytes(samples: Any) -> bytes:
    """48 kHz mono 16-bit PCM WAV of float samples in [-1, 1]."""
    import numpy as np
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AudioLibrary:
    """Stores uploads and their renditions under ``directory``; rows in ``audio``."""

    def __init__(self, writer: Writer, directory: str | pathlib.Path, *,
                 target_lufs: float = TARGET_LUFS):
        self.writer = writer
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.target_lufs = target_lufs

    def rendition_path(self, sha256: str) -> pathlib.Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise NotFound(f"no audio file {sha256!r}")
        return self.directory / f"{sha256}.wav"

    def add(self, data: bytes, title: str, filename: str | None = None) -> dict[str, Any]:
        """Check, measure and normalise an upload; return its library record."""
        if not title or not isinstance(title, str):
            raise AudioError("an audio upload needs a title")
        if len(data) > MAX_UPLOAD_BYTES:
            raise AudioError(f"the file is {len(data)} bytes: the limit is {MAX_UPLOAD_BYTES}")
        source_sha = hashlib.sha256(data).hexdigest()
        fmt, samples, duration = decode(data)
        scaled, loudness, gain_db = normalise(samples, self.target_lufs)
        rendition = wav_bytes(scaled)
        sha = hashlib.sha256(rendition).hexdigest()
        path = self.rendition_path(sha)
        if not path.exists():
            _write_atomic(path, rendition)
        record = {"title": title, "filename": filename, "format": fmt,
                  "source_sha256": source_sha, "source_bytes": len(data),
                  "duration_s": round(duration, 3), "loudness_lufs": round(loudness, 2),
                  "gain_db": round(gain_db, 2), "target_lufs": self.target_lufs,
                  "sha256": sha, "bytes": len(rendition), "created": time.time()}

        def task(db: sqlite_utils.Database) -> int:
            cursor = db.execute(
                "INSERT INTO audio (title, filename, format, source_sha256, source_bytes,"
                " duration_s, loudness_lufs, gain_db, target_lufs, sha256, bytes, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(record.values()))
            return int(cursor.lastrowid or 0)

        record["id"] = self.writer.call(task)
        log.info("audio %s (%s) added: %.1f s, %.1f LUFS, gain %+.1f dB", record["id"],
                 title, duration, loudness, gain_db)
        return record


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


def migrate_audio(db: sqlite_utils.Database) -> None:
    """Schema: the audio library."""
    db.execute("""CREATE TABLE audio (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL, filename TEXT, format TEXT NOT NULL,
        source_sha256 TEXT NOT NULL, source_bytes INTEGER NOT NULL,
        duration_s REAL NOT NULL, loudness_lufs REAL NOT NULL, gain_db REAL NOT NULL,
        target_lufs REAL NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
        created REAL NOT NULL)""")
