"""Reading an upload: its format, whether it was cut off, how long it lasts, and its
samples at 48 kHz mono in chunks of a few seconds (miniaudio).

The duration is checked against the cap before anything is decoded, and
again while decoding, so a small file that would expand to days of audio
(a "decode bomb") is refused early. MP3 and Ogg truncation is found by their
own framing (:mod:`controller.broadcasts.audio_truncation`); WAV and FLAC by
their declared length.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import pathlib
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from controller.broadcasts.audio_truncation import mp3_truncation, ogg_truncation
from controller.broadcasts.loudness import RATE
from controller.errors import InvalidRequest, _t

MIN_DURATION_S = 0.5
#: Sample rates of real recordings. A header claiming 1 Hz makes a few kilobytes
#: "last" hours, each of its samples resampled to 48,000: a decode bomb.
MIN_RATE, MAX_RATE = 8_000, 384_000
MAX_DURATION_S = 3 * 3600
FORMATS = ("mp3", "wav", "ogg", "flac")
CHUNK_FRAMES = 4 * RATE  # 4 s of 48 kHz float64 is 1.5 MB a copy


class AudioError(InvalidRequest):
    """An upload that cannot be used as a broadcast; the message says why."""


_UNDECODABLE = _t("the {format} file cannot be decoded ({detail}); is it damaged or truncated?")



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
    raise AudioError(_t("not an audio file: expected MP3, WAV, OGG Vorbis or FLAC (the file "
                        "starts with {start!r})"), start=data[:8])


def check_framing(data: bytes | mmap.mmap, fmt: str) -> None:
    """Refuse an MP3 or Ogg file whose frames or pages show it was cut off.

    Decoders play what is there without complaint, so this runs first; WAV
    and FLAC are checked against their declared length after decoding.
    """
    checks = {"mp3": mp3_truncation, "ogg": ogg_truncation}
    problem = checks[fmt](data) if fmt in checks else None  # type: ignore[arg-type]
    if problem:
        raise AudioError(_t("the {format} file is truncated: {problem}"), format=fmt.upper(),
                         problem=problem)


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
        raise AudioError(_t("the audio lasts {duration}: the limit is {limit}"),
                         duration=_clock(source.estimated_s), limit=_clock(max_duration_s))
    return source


def _with_duration(path: pathlib.Path, fmt: str, wav_s: float | None) -> Source:
    """The source with the duration its container declares or its frames add up to."""
    import miniaudio
    try:
        info = _file_info(str(path), fmt)
    except miniaudio.MiniaudioError as exc:
        raise AudioError(_UNDECODABLE, format=fmt.upper(), detail=exc) from None
    if not MIN_RATE <= info.sample_rate <= MAX_RATE:
        raise AudioError(_t("the {format} file's sample rate is {rate} Hz: expected {lo:,} to"
                            " {hi:,} Hz"), format=fmt.upper(), rate=info.sample_rate,
                         lo=MIN_RATE, hi=MAX_RATE)
    found = info.num_frames / info.sample_rate
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
                    raise AudioError(_t("the audio lasts more than {limit}: the limit is"
                                        " {limit}"), limit=_clock(max_duration_s))
                yield np.frombuffer(chunk, dtype=np.float32).astype(np.float64)
    except miniaudio.MiniaudioError as exc:
        raise AudioError(_UNDECODABLE, format=source.fmt.upper(), detail=exc) from None


def check_length(source: Source, frames: int) -> float:
    """Seconds decoded, refused if short of what the container declared or too short."""
    duration = frames / RATE
    declared = source.declared_s
    if declared and duration < declared * 0.99:
        raise AudioError(_t("the {format} file is truncated: it declares {declared:.2f} s of"
                            " audio but holds {duration:.2f} s"), format=source.fmt.upper(),
                         declared=declared, duration=duration)
    if duration < MIN_DURATION_S:
        raise AudioError(_t("the audio lasts {duration:.2f} s: at least {minimum} s needed"),
                         duration=duration, minimum=MIN_DURATION_S)
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
