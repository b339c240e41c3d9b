"""The audio library within bounds: long files in little memory, decode bombs refused,
loudness measured in a stream as pyloudnorm measures it whole, one upload at a time."""

from __future__ import annotations

import io
import json
import pathlib
import re
import sqlite3
import struct
import subprocess
import sys
import threading
import wave
from collections.abc import Callable
from typing import Any

import numpy as np
import pyloudnorm
import pytest
import sqlite_utils

from controller.broadcasts.audio_library import AudioBusy, AudioError, AudioLibrary
from controller.broadcasts.loudness import LoudnessMeter, limit, limit_stream
from controller.db.schema.broadcasts import AUDIO

RECORD_KEYS = {"id", "title", "filename", "format", "source_sha256", "source_bytes",
               "duration_s", "loudness_lufs", "gain_db", "target_lufs", "sha256", "bytes",
               "created"}


class FakeWriter:
    """The one method of the controller's Writer that AudioLibrary uses: run a task
    in a transaction, one at a time from any thread, on a database holding just the
    ``audio`` table."""

    def __init__(self, path: pathlib.Path):
        self.db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False))
        self.db.execute(AUDIO)
        self.lock = threading.Lock()

    def call(self, task: Callable[[sqlite_utils.Database], Any]) -> Any:
        with self.lock, self.db.conn:
            return task(self.db)


def library_at(directory: pathlib.Path, **options: Any) -> AudioLibrary:
    """A library with its renditions under ``directory/audio``."""
    directory.mkdir(parents=True, exist_ok=True)
    return AudioLibrary(FakeWriter(directory / "audio.db"), directory / "audio", **options)


def speech_like(seconds: float, rate: int = 44100, level: float = 0.05,
                seed: int = 1) -> np.ndarray:
    """Band-limited noise under a 3 Hz envelope: peaks well above its loudness, like speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    return x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / rate)) * level


def wav_file(path: pathlib.Path, samples: np.ndarray, rate: int = 44100,
             channels: int = 1) -> pathlib.Path:
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())
    return path


def sndfile_bytes(samples: np.ndarray, fmt: str, subtype: str, rate: int = 44100) -> bytes:
    import soundfile
    out = io.BytesIO()
    with soundfile.SoundFile(out, "w", rate, 1, subtype, format=fmt) as f:
        f.write(samples)
    return out.getvalue()


def mp3_bytes(samples: np.ndarray, rate: int = 44100, bit_rate: int = 128,
              quality: int = 2) -> bytes:
    import lameenc
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bit_rate)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(quality)
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def rendition(library: AudioLibrary, record: dict[str, Any]) -> np.ndarray:
    with wave.open(str(library.rendition_path(record["sha256"]))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768


def leftovers(library: AudioLibrary) -> list[str]:
    """Files in the library directory other than renditions: temporary files left behind."""
    return [p.name for p in library.directory.iterdir()
            if not re.fullmatch(r"[0-9a-f]{64}\.wav", p.name)]


def streamed_loudness(x: np.ndarray, chunk: int) -> float:
    meter = LoudnessMeter()
    for start in range(0, len(x), chunk):
        meter.feed(x[start:start + chunk])
    return meter.integrated()


@pytest.mark.parametrize("signal", ["noise", "tone", "speech with pauses"])
def test_streaming_loudness_agrees_with_pyloudnorm(signal):
    rate = 48000
    t = np.arange(int(6.07 * rate)) / rate  # not whole blocks: pyloudnorm counts a part-block
    x = {"noise": np.random.default_rng(3).standard_normal(len(t)) * 0.1,
         "tone": 0.25 * np.sin(2 * np.pi * 997 * t),
         "speech with pauses": speech_like(6.07, rate) * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
         + 1e-5 * np.random.default_rng(4).standard_normal(len(t))}[signal]
    whole = pyloudnorm.Meter(rate).integrated_loudness(x)
    for chunk in (1000, 12345, len(x)):
        assert abs(streamed_loudness(x, chunk) - whole) < 0.05, (signal, chunk)


def test_limiter_in_chunks_matches_the_whole_file():
    """No clicks or steps where one chunk ends and the next begins."""
    x = speech_like(5, 48000, level=0.5, seed=9)
    x[[1000, 48_000, 100_001, 199_999]] = [1.8, -2.5, 3.0, 1.5]  # peaks near and on seams
    chunks = [x[i:i + 50_000] for i in range(0, len(x), 50_000)]
    streamed = np.concatenate(list(limit_stream(chunks)))
    assert np.allclose(streamed, limit(x), rtol=0, atol=1e-12)
    assert np.max(np.abs(streamed)) <= 10 ** (-1 / 20) + 1e-12


def test_add_file_of_two_minute_wav_is_at_minus_16_lufs_and_peaks_under_minus_1_dbfs(tmp_path):
    library = library_at(tmp_path / "lib")
    quiet = speech_like(120, level=0.02, seed=5)
    path = wav_file(tmp_path / "bantin.wav", quiet, channels=2)
    record = library.add_file(path, "Bản tin chiều", "bantin.wav")
    assert set(record) == RECORD_KEYS
    assert (record["format"], record["filename"]) == ("wav", "bantin.wav")
    assert abs(record["duration_s"] - 120.0) < 0.01
    assert record["loudness_lufs"] < -25
    out = rendition(library, record)
    assert abs(pyloudnorm.Meter(48000).integrated_loudness(out) - (-16.0)) < 0.5
    assert 20 * np.log10(np.max(np.abs(out))) <= -1.0
    assert record["bytes"] == library.rendition_path(record["sha256"]).stat().st_size
    assert leftovers(library) == []
    assert path.exists()  # the caller's file is left alone


def test_add_of_bytes_still_works_and_leaves_no_temporary_files(tmp_path):
    library = library_at(tmp_path / "lib")
    data = sndfile_bytes(speech_like(3, level=0.1), "OGG", "VORBIS")
    record = library.add(data, "Thông báo", "thong-bao.ogg")
    assert set(record) == RECORD_KEYS and record["format"] == "ogg"
    assert abs(record["duration_s"] - 3.0) < 0.01
    assert abs(pyloudnorm.Meter(48000).integrated_loudness(rendition(library, record))
               + 16.0) < 0.5
    assert leftovers(library) == []


def cut_ogg(data: bytes) -> bytes:
    """The Ogg file without its last page (the end-of-stream one)."""
    return data[:data.rfind(b"OggS")]


@pytest.mark.parametrize("make, message", [
    (lambda: b"%PDF-1.4 a scanned letter, not a bulletin" * 20, "not an audio file"),
    (lambda: b"", "not an audio file"),
    (lambda: wav_bytes_of(speech_like(2))[:-88200], "the WAV file is truncated"),
    (lambda: (lambda d: d[:len(d) // 2])(sndfile_bytes(speech_like(2), "FLAC", "PCM_16")),
     "FLAC file is truncated"),
    (lambda: mp3_bytes(speech_like(2))[:9000], "the MP3 file is truncated"),
    (lambda: cut_ogg(sndfile_bytes(speech_like(2), "OGG", "VORBIS")),
     "the OGG file is truncated: its last page"),
    (lambda: wav_bytes_of(np.zeros(2 * 44100)), "silent"),
    (lambda: wav_bytes_of(speech_like(0.2)), "at least"),
])
def test_add_file_refuses_unusable_uploads_with_the_same_errors(tmp_path, make, message):
    library = library_at(tmp_path / "lib")
    path = tmp_path / "upload"
    path.write_bytes(make())
    with pytest.raises(AudioError, match=message):
        library.add_file(path, "x")
    assert list(library.directory.iterdir()) == []


def wav_bytes_of(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.clip(samples * 32767, -32768, 32767).astype("<i2").tobytes())
    return out.getvalue()


def test_wav_declaring_four_hours_is_refused_before_decoding(tmp_path):
    """A decode bomb: 64 kB whose header declares four hours of 8 kHz 8-bit audio."""
    declared = 4 * 3600 * 8000
    header = (b"RIFF" + struct.pack("<I", 36 + declared) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
              + b"data" + struct.pack("<I", declared))
    bomb = tmp_path / "bomb.wav"
    bomb.write_bytes(header + bytes([128, 200, 56, 128]) * 16_000)
    library = library_at(tmp_path / "lib")
    with pytest.raises(AudioError, match=r"the audio lasts 4:00:00: the limit is 3:00:00"):
        library.add_file(bomb, "bomb")
    assert list(library.directory.iterdir()) == []


def test_mp3_of_three_hours_ten_minutes_at_8_kbps_is_refused_before_decoding(tmp_path):
    """A real decode bomb: 11 MB of MP3 that would expand to 2 GB of 48 kHz float. The
    error gives its exact length, which only the frame headers can have told."""
    rate, block = 8000, np.zeros(8000 * 10)
    block[:8000] = 0.2 * np.sin(2 * np.pi * 440 * np.arange(8000) / rate)
    data = mp3_bytes(np.tile(block, 6 * 190), rate, bit_rate=8, quality=7)
    bomb = tmp_path / "long.mp3"
    bomb.write_bytes(data)
    assert len(data) < 12 << 20
    library = library_at(tmp_path / "lib")
    with pytest.raises(AudioError, match=r"the audio lasts 3:10:0\d: the limit is 3:00:00"):
        library.add_file(bomb, "long")
    assert list(library.directory.iterdir()) == []


def test_flac_not_declaring_its_length_is_stopped_at_the_cap_while_decoding(tmp_path):
    """A container may leave its length unknown (FLAC's total samples 0), or understate
    it: decoding stops once past the cap rather than expanding the rest."""
    data = bytearray(sndfile_bytes(speech_like(8), "FLAC", "PCM_16"))
    assert data[:4] == b"fLaC"
    (fields,) = struct.unpack_from(">Q", data, 18)  # rate, channels, bits, total samples
    struct.pack_into(">Q", data, 18, fields & ~((1 << 36) - 1))
    path = tmp_path / "unknown-length.flac"
    path.write_bytes(bytes(data))
    library = library_at(tmp_path / "lib", max_duration_s=3)
    with pytest.raises(AudioError, match="the audio lasts more than 0:00:03: the limit is 0:00:03"):
        library.add_file(path, "x")
    assert list(library.directory.iterdir()) == []
    assert library_at(tmp_path / "lib2", max_duration_s=10).add_file(path, "x")["duration_s"] > 7


MEASURE_RSS = """
import json, resource, sys, time
sys.path.insert(0, "tests")
import miniaudio, numpy, scipy.ndimage, scipy.signal  # loaded at start-up in the controller
from test_audio_bounds import library_at
import pathlib
library = library_at(pathlib.Path(sys.argv[2]), max_upload_bytes=1 << 30)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.monotonic()
record = library.add_file(sys.argv[1], "long")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "before_kib": before,
                  "seconds": time.monotonic() - start, "record": record}))
"""


def long_wav(path: pathlib.Path, minutes: int) -> pathlib.Path:
    """48 kHz mono 16-bit speech-like noise, written a minute at a time."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        for minute in range(minutes):
            x = speech_like(60, 48000, level=0.03, seed=minute)
            w.writeframes(np.clip(x * 32767, -32768, 32767).astype("<i2").tobytes())
    return path


def test_forty_minute_wav_is_processed_in_bounded_memory(tmp_path):
    source = long_wav(tmp_path / "long.wav", 40)
    assert source.stat().st_size > 230_000_000
    done = subprocess.run([sys.executable, "-c", MEASURE_RSS, str(source), str(tmp_path / "lib")],
                          capture_output=True, text=True, timeout=600,
                          cwd=pathlib.Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["growth_kib"] < 150 * 1024, result
    assert abs(result["record"]["duration_s"] - 2400) < 0.01
    assert result["record"]["bytes"] == 44 + 2400 * 48000 * 2


def test_slot_refuses_a_second_upload_until_the_first_is_done(tmp_path):
    library = library_at(tmp_path / "lib")
    upload = wav_file(tmp_path / "a.wav", speech_like(1.0))
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with library.slot():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(AudioBusy) as busy, library.slot(wait_s=0.1):
            pass
        assert busy.value.retry_after_s == 30
        assert isinstance(busy.value, RuntimeError)
        with pytest.raises(AudioBusy, match="another audio upload is being processed"):
            library.add_file(upload, "second")
    finally:
        release.set()
        thread.join()
    with library.slot(wait_s=1.0):
        record = library.add_file(upload, "second", slot_held=True)
    assert record["title"] == "second"
    assert library.add_file(upload, "third")["id"] == record["id"] + 1


def test_add_file_claiming_a_slot_it_does_not_hold_is_refused(tmp_path):
    library = library_at(tmp_path / "lib")
    upload = wav_file(tmp_path / "a.wav", speech_like(1.0))
    with pytest.raises(RuntimeError, match="outside AudioLibrary.slot"):
        library.add_file(upload, "x", slot_held=True)


def test_slot_taken_in_one_thread_and_released_in_another_as_an_async_handler_does(tmp_path):
    """The web layer takes the slot in a worker thread before reading the body, processes
    in another and gives it back from the event loop: no ``with`` block spans them."""
    library = library_at(tmp_path / "lib")
    upload = wav_file(tmp_path / "a.wav", speech_like(1.0))
    taker = threading.Thread(target=library.slot().__enter__)
    taker.start()
    taker.join()
    with pytest.raises(AudioBusy), library.slot(wait_s=0.1):
        pass
    done: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: done.append(
        library.add_file(upload, "bản tin", slot_held=True)))
    worker.start()
    worker.join()
    assert done and done[0]["title"] == "bản tin"
    library.release_slot()
    with pytest.raises(RuntimeError, match="not held"):
        library.release_slot()
    with library.slot(wait_s=0.1):
        pass
