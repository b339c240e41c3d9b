"""Helpers and fixtures for the loudspeaker tests: ALSA file devices, test audio, speakers.

The ALSA fixture points ``ALSA_CONFIG_PATH`` at a generated file that
includes the system's ``alsa.conf`` and defines ``tt_speaker_N`` PCMs of
``type file`` (over the ``null`` PCM) writing raw 48 kHz s16le mono to a
temporary folder; it restores the variable afterwards. Import the fixtures
into a test module to use them.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import pathlib
import threading
import time
import wave
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import requests

from controller.access import tokens as auth
from controller.service import Controller
from node_runtime.node import Node
from speaker_node.cli import build
from speaker_node.speaker import Speaker

PCM_COUNT = 48
_counter = itertools.count()
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(scope="session")
def alsa_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    folder = tmp_path_factory.mktemp("alsa")
    lines = ["</usr/share/alsa/alsa.conf>"]
    for n in range(PCM_COUNT):
        lines.append(f'pcm.tt_speaker_{n} {{ type file; slave.pcm "null"; '
                     f'file "{folder}/out{n}.raw"; format "raw"; truncate false }}')
    conf = folder / "asound.conf"
    conf.write_text("\n".join(lines) + "\n")
    old = os.environ.get("ALSA_CONFIG_PATH")
    os.environ["ALSA_CONFIG_PATH"] = str(conf)
    yield folder
    if old is None:
        os.environ.pop("ALSA_CONFIG_PATH", None)
    else:
        os.environ["ALSA_CONFIG_PATH"] = old


def new_device(alsa_dir: pathlib.Path) -> tuple[str, pathlib.Path]:
    """A fresh ALSA file PCM name and the file it writes."""
    n = next(_counter) % PCM_COUNT
    out = alsa_dir / f"out{n}.raw"
    out.unlink(missing_ok=True)
    return f"tt_speaker_{n}", out


def wav_bytes(samples: np.ndarray, rate: int = 44100, channels: int = 1) -> bytes:
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    if channels == 2:
        pcm = np.repeat(pcm, 2)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def noise_wav(seconds: float = 2.0, level: float = 0.05, seed: int = 1, rate: int = 44100,
              channels: int = 2) -> bytes:
    """Band-limited noise bursts: loud enough to measure, distinctive for correlation."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = rng.standard_normal(n)
    x = np.convolve(x, np.ones(8) / 8, mode="same")  # tame the top octave before resampling
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / rate)
    return wav_bytes(x * envelope * level, rate, channels)


class SpeakerTestbed:
    """A controller with an API token and helpers to upload, schedule and listen."""

    def __init__(self, ctl: Controller, make_node: Callable[..., Node], alsa_dir: pathlib.Path):
        from gpiozero.pins.mock import MockFactory
        self.ctl, self.make_node, self.alsa_dir = ctl, make_node, alsa_dir
        self.token = ctl.writer.call(lambda db: auth.create_token(db, "operator"))
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.pin_factory = MockFactory()
        self.speakers: list[Speaker] = []
        now = dt.datetime.now(TZ)
        # Quiet hours well away from now, so the tests pass at any time of day.
        ctl.broadcasts.quiet_hours = ((now + dt.timedelta(hours=8)).time().replace(
            second=0, microsecond=0), (now + dt.timedelta(hours=9)).time().replace(
            second=0, microsecond=0))

    def url(self, path: str) -> str:
        return self.ctl.api_url + path

    def upload(self, data: bytes, title: str = "Bản tin", name: str = "bulletin.wav") -> Any:
        return self.http.post(self.url("/api/v1/audio"), files={"file": (name, data)},
                              data={"title": title})

    def speaker(self, device_id: str, hamlet: str | None = None, pin: int | None = None,
                clock_synced: Callable[[], bool] | None = None,
                **settings: Any) -> tuple[Speaker, pathlib.Path, Node]:
        device, out = new_device(self.alsa_dir)
        role = {"controller_url": self.ctl.api_url, "output_device": device,
                "amp_lead_s": 1.0, "amp_tail_s": 0.5, **settings}
        if pin is not None:
            role["relay_pin"] = pin
        node = self.make_node(device_id, controller=self.ctl, start=False, role="speaker",
                              role_settings=role)
        if hamlet:
            self.ctl.registry.add(device_id, "speaker", hamlet=hamlet)
        speaker = build(node, pin_factory=self.pin_factory, clock_synced=clock_synced)
        self.speakers.append(speaker)
        node.start()
        from conftest import wait_for  # conftest imports this module: import late
        wait_for(lambda: node.online)
        return speaker, out, node

    def schedule(self, audio_id: int, start: dt.datetime, **body: Any) -> Any:
        local = start.astimezone(TZ).replace(tzinfo=None).isoformat(timespec="milliseconds")
        return self.http.post(self.url("/api/v1/broadcasts"),
                              json={"audio_id": audio_id, "start": local, **body})

    def receipts(self, broadcast_id: int) -> list[dict[str, Any]]:
        return self.http.get(self.url(f"/api/v1/broadcasts/{broadcast_id}/receipts")).json()

    def rendition(self, sha256: str) -> np.ndarray:
        data = self.ctl.audio_library.rendition_path(sha256).read_bytes()
        with wave.open(io.BytesIO(data)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)

    def close(self) -> None:
        for speaker in self.speakers:
            speaker.close()


@pytest.fixture
def bed(controller: Controller, make_node: Callable[..., Node],
        alsa_dir: pathlib.Path) -> Iterator[SpeakerTestbed]:
    testbed = SpeakerTestbed(controller, make_node, alsa_dir)
    yield testbed
    testbed.close()


class Recorder:
    """Samples an output file's size and a relay pin every 2 ms, with wall-clock times."""

    def __init__(self, path: pathlib.Path, pin: Any = None):
        self.path, self.pin = path, pin
        self.samples: list[tuple[float, int, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            size = self.path.stat().st_size if self.path.exists() else 0
            state = bool(self.pin.state) if self.pin is not None else False
            self.samples.append((time.time(), size, state))
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def first_sound(self) -> float:
        return next(t for t, size, _ in self.samples if size > 0)

    def last_growth(self) -> float:
        final = self.samples[-1][1]
        return next(t for t, size, _ in self.samples if size >= final)

    def relay_on(self) -> float:
        return next(t for t, _, on in self.samples if on)

    def relay_off_after(self, when: float) -> float:
        return next(t for t, _, on in self.samples if t > when and not on)


def read_pcm(path: pathlib.Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.float64)


def best_match(written: np.ndarray, source: np.ndarray) -> tuple[float, int, float]:
    """(normalised correlation, lag in samples, gain) of ``source`` inside ``written``."""
    n = len(written) + len(source)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(written, size) * np.conj(np.fft.rfft(source, size)), size)
    lag = int(np.argmax(corr[:len(written)]))
    segment = written[lag:lag + len(source)]
    if len(segment) < len(source):
        return 0.0, lag, 0.0
    r = float(np.dot(segment, source) / (np.linalg.norm(segment) * np.linalg.norm(source)))
    gain = float(np.dot(segment, source) / np.dot(source, source))
    return r, lag, gain


def tones_reference(frequency: float, seconds: float) -> np.ndarray:
    """The test tone as the node generates it, at the default volume."""
    from speaker_node.tones import sine
    return np.frombuffer(sine(frequency, seconds).tobytes(), dtype="<i2").astype(np.float64)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def flac_bytes(samples: np.ndarray, rate: int = 44100, block: int = 4096) -> bytes:
    """A valid mono 16-bit FLAC file with VERBATIM subframes (no encoder is installed here)."""
    import struct
    pcm = np.clip(samples * 32767, -32768, 32767).astype(">i2")
    total = len(pcm)
    info = struct.pack(">HH", block, block) + b"\0" * 6
    packed = (rate << 44) | (0 << 41) | (15 << 36) | total  # 20+3+5+36 bits
    info += packed.to_bytes(8, "big") + b"\0" * 16
    out = bytearray(b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info)
    for number, first in enumerate(range(0, total, block)):
        chunk = pcm[first:first + block]
        assert number < 128  # one-byte frame numbers keep this writer short
        header = bytes([0xFF, 0xF8, 0x70, 0x08, number]) + struct.pack(">H", len(chunk) - 1)
        header += bytes([_crc8(header)])
        frame = header + b"\x02" + chunk.tobytes()
        out += frame + struct.pack(">H", _crc16(frame))
    return bytes(out)


def mp3_bytes(samples: np.ndarray, rate: int = 44100, *, channels: int = 1,
              bit_rate: int = 128) -> bytes:
    """Mono samples in -1..1 encoded as an MP3 (LAME, through lameenc: no Xing header)."""
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bit_rate)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(2)
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    if channels == 2:
        pcm = np.repeat(pcm, 2)
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def _sndfile(samples: np.ndarray, rate: int, channels: int, format: str, subtype: str,
             title: str | None = None, **options: Any) -> bytes:
    """Mono samples in -1..1 written by libsndfile (through soundfile) into memory."""
    import soundfile

    frames = np.column_stack([samples] * channels) if channels > 1 else samples
    out = io.BytesIO()
    with soundfile.SoundFile(out, "w", rate, channels, subtype, format=format,
                             **options) as f:
        if title:
            f.title = title
        f.write(frames)
    return out.getvalue()


def lame_tagged_mp3_bytes(samples: np.ndarray, rate: int = 44100, *, channels: int = 1,
                          constant: bool = False, title: str | None = None) -> bytes:
    """An MP3 from LAME through libsndfile, with the LAME tag in its first frame: a
    Xing header (variable bit rate) or an Info header (``constant``); ``title``
    adds an ID3v1 tag at the end."""
    options = {"bitrate_mode": "CONSTANT", "compression_level": 0.5} if constant else {}
    return _sndfile(samples, rate, channels, "MP3", "MPEG_LAYER_III", title, **options)


def ogg_bytes(samples: np.ndarray, rate: int = 44100, *, channels: int = 1) -> bytes:
    """Mono samples in -1..1 encoded as Ogg Vorbis (libvorbis through libsndfile)."""
    return _sndfile(samples, rate, channels, "OGG", "VORBIS")


def noise_flac(seconds: float = 2.0, level: float = 0.05, seed: int = 4) -> bytes:
    rng = np.random.default_rng(seed)
    return flac_bytes(rng.standard_normal(int(seconds * 44100)) * level)


def soon(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def receipt_of(bed: SpeakerTestbed, broadcast_id: int, device: str) -> dict[str, Any] | None:
    """The receipt ``device`` sent for its (first) occurrence of a broadcast, if any yet."""
    for occ in bed.receipts(broadcast_id):
        for s in occ["speakers"]:
            if s["device"] == device and s["status"] not in ("pending", "no_receipt"):
                return s
    return None


def restart(speaker: Speaker, node: Node) -> tuple[Node, Speaker]:
    """Close a speaker node and start it again from the same files (it keeps its broker
    settings, so it comes back offline if the broker is down)."""
    config = node.config
    speaker.close()
    node.close()
    again = Node(config)
    back = build(again)
    again.start()
    return again, back
