"""The audio library: uploads measured and loudness-normalised for the speakers, stored
content-addressed, listed.

An upload is read with :mod:`controller.broadcasts.audio_source` (format,
truncation, the three-hour cap, decoding in chunks), measured with the
ITU-R BS.1770-4 / EBU R128 meter and written at the target (−16 LUFS by
default; a look-ahead limiter keeps peaks under −1 dBFS, see
:mod:`controller.broadcasts.loudness`) as 48 kHz mono 16-bit WAV: hamlet
horns are mono, and one format lets every node play without resampling.
Renditions are named by their sha256 and served to the nodes by the web
layer.

Everything streams: the file is decoded once to measure it and once more
for each rendition pass, so memory stays at a few tens of MB whatever the
length. Uploads are processed one at a time (:meth:`AudioLibrary.slot`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pathlib
import shutil
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from typing import Any, BinaryIO

import sqlite_utils

from controller.broadcasts.audio_source import (
    MAX_DURATION_S,
    AudioError,
    Source,
    check_length,
    open_source,
    pcm_chunks,
)
from controller.broadcasts.loudness import (
    ABSOLUTE_GATE_LUFS,
    RATE,
    LoudnessMeter,
    limit_stream,
)
from controller.db.writer import Writer
from controller.errors import Busy, NotFound, _t

log = logging.getLogger(__name__)

TARGET_LUFS = -16.0
SILENCE_DBFS = -60.0
MAX_UPLOAD_BYTES = 200 << 20
BUSY_RETRY_S = 30
RENDER_PASSES = 3


class AudioBusy(Busy):
    """Another upload is being processed; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: float = BUSY_RETRY_S, **params: Any):
        super().__init__(message, **params)
        self.retry_after_s = retry_after_s


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
        raise AudioError(_t("the audio is silent (peak below {dbfs:.0f} dBFS)"),
                         dbfs=SILENCE_DBFS)
    loudness = meter.integrated()
    if not math.isfinite(loudness) or loudness < ABSOLUTE_GATE_LUFS:
        raise AudioError(_t("the audio is silent (integrated loudness below −70 LUFS)"))
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
        raise AudioError(_t("the {format} file changed while it was processed ({before} "
                            "samples, then {after})"), format=source.fmt.upper(),
                         before=measured.frames, after=written)
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
            raise NotFound(_t("no audio file {sha256!r}"), sha256=sha256)
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
            raise AudioBusy(_t("another audio upload is being processed (waited {waited:g} s);"
                               " try again in {retry} s"), waited=wait_s, retry=BUSY_RETRY_S)
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
            raise AudioError(_t("an audio upload needs a title"))
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
            raise AudioError(_t("the file is {size} bytes: the limit is {limit}"), size=size,
                             limit=self.max_upload_bytes)

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
        raise NotFound(_t("no audio {id!r} in the library"), id=audio_id)
    return dict(zip(_COLUMNS, row, strict=True))
