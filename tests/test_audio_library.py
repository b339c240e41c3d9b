"""The audio library: uploads checked and normalised, files served to devices with ranges."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pyloudnorm
import pytest
import requests
from speaker_support import (
    lame_tagged_mp3_bytes,
    mp3_bytes,
    noise_flac,
    noise_wav,
    ogg_bytes,
    wav_bytes,
)

from conftest import DEVICE_PASSWORD
from controller.broadcasts.audio_source import AudioError, decode
from controller.broadcasts.audio_truncation import mp3_truncation, mpeg_frame, ogg_truncation
from controller.cli import main as controller_main


def rendition_loudness(bed, sha: str) -> float:
    data = bed.ctl.audio_library.rendition_path(sha).read_bytes()
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
    return float(pyloudnorm.Meter(48000).integrated_loudness(x))


def test_audio_upload_is_normalised_to_minus_16_lufs_with_duration_and_hashes(bed):
    quiet_source = noise_wav(3.0, level=0.02)
    resp = bed.upload(quiet_source, title="Bản tin sáng")
    assert resp.status_code == 201, resp.text
    record = resp.json()
    assert record["format"] == "wav"
    assert abs(record["duration_s"] - 3.0) < 0.01
    assert record["loudness_lufs"] < -25  # the quiet source was measured...
    assert abs(rendition_loudness(bed, record["sha256"]) - (-16.0)) < 0.5  # ...and lifted
    import hashlib
    assert record["source_sha256"] == hashlib.sha256(quiet_source).hexdigest()
    listed = bed.http.get(bed.url("/api/v1/audio")).json()
    assert [a["title"] for a in listed] == ["Bản tin sáng"]


def test_audio_upload_refuses_non_audio_with_clear_error(bed):
    resp = bed.upload(b"%PDF-1.4 this is a scanned letter, not a bulletin" * 20,
                      name="letter.pdf")
    assert resp.status_code == 400
    assert "not an audio file" in resp.json()["error"]


def test_audio_upload_refuses_truncated_wav(bed):
    whole = noise_wav(2.0)
    resp = bed.upload(whole[: len(whole) // 2], name="cut.wav")
    assert resp.status_code == 400
    assert "truncated" in resp.json()["error"]


def test_audio_upload_refuses_silence_and_too_short(bed):
    silent = bed.upload(wav_bytes(np.zeros(44100 * 2)), name="silent.wav")
    assert silent.status_code == 400
    assert "silent" in silent.json()["error"]
    short = bed.upload(noise_wav(0.2), name="blip.wav")
    assert short.status_code == 400
    assert "at least" in short.json()["error"]


def test_audio_upload_needs_token(bed):
    resp = requests.post(bed.url("/api/v1/audio"), files={"file": ("a.wav", noise_wav())})
    assert resp.status_code == 401


def test_audio_file_served_to_device_with_range_and_refused_without_credentials(bed, broker):
    record = bed.upload(noise_wav(1.0)).json()
    broker.add_device("spk-auth-1")
    url = bed.url(f"/api/v1/audio/files/{record['sha256']}")
    whole = requests.get(url, auth=("spk-auth-1", DEVICE_PASSWORD))
    assert whole.status_code == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert len(whole.content) == record["bytes"]
    part = requests.get(url, auth=("spk-auth-1", DEVICE_PASSWORD),
                        headers={"Range": "bytes=100-"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-{record['bytes'] - 1}/{record['bytes']}"
    assert part.content == whole.content[100:]
    assert requests.get(url).status_code == 401
    assert requests.get(url, auth=("spk-auth-1", "wrong")).status_code == 401
    assert requests.get(url, auth=("spk-auth-1", DEVICE_PASSWORD),
                        headers={"Range": f"bytes={record['bytes'] + 5}-"}).status_code == 416


def test_audio_add_cli_adds_and_reports_bad_files(tmp_path, capsys):
    good = tmp_path / "greeting.wav"
    good.write_bytes(noise_wav(1.5))
    data = tmp_path / "data"
    assert controller_main(["--data", str(data), "audio", "add", str(good),
                            "--title", "Chúc mừng năm mới"]) == 0
    assert "Chúc mừng năm mới" in capsys.readouterr().out
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio at all, just notes" * 10)
    try:
        controller_main(["--data", str(data), "audio", "add", str(bad), "--title", "x"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "not an audio file" in capsys.readouterr().err


def test_audio_upload_accepts_flac_and_refuses_truncated_flac(bed):
    whole = noise_flac(2.0)
    resp = bed.upload(whole, name="greeting.flac")
    assert resp.status_code == 201, resp.text
    assert (resp.json()["format"], resp.json()["duration_s"]) == ("flac", 2.0)
    assert abs(rendition_loudness(bed, resp.json()["sha256"]) - (-16.0)) < 0.5
    cut = bed.upload(whole[: len(whole) // 2], name="cut.flac")
    assert cut.status_code == 400
    assert "FLAC file is truncated" in cut.json()["error"]


def test_audio_upload_decodes_mp3_and_refuses_a_silent_one(bed):
    rng = np.random.default_rng(7)
    noise = mp3_bytes(rng.standard_normal(2 * 44100) * 0.05)
    resp = bed.upload(noise, name="bulletin.mp3")
    assert resp.status_code == 201, resp.text
    assert resp.json()["format"] == "mp3"
    assert abs(rendition_loudness(bed, resp.json()["sha256"]) - (-16.0)) < 0.5
    silence = bed.upload(mp3_bytes(np.zeros(44100)), name="silence.mp3")
    assert silence.status_code == 400
    assert "silent" in silence.json()["error"]


def noise(seconds: float, rate: int = 44100, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.05


def frame_starts(data: bytes, start: int = 0) -> list[int]:
    """Offsets of the MPEG frames from ``start`` to the end (the file's length last)."""
    starts = [start]
    while starts[-1] < len(data) and (frame := mpeg_frame(data, starts[-1])):
        starts.append(starts[-1] + frame.length)
    return starts


def ogg_page_starts(data: bytes) -> list[int]:
    starts = [0]
    while starts[-1] < len(data):
        count = data[starts[-1] + 26]
        table = data[starts[-1] + 27:starts[-1] + 27 + count]
        starts.append(starts[-1] + 27 + count + sum(table))
    return starts


def id3v2_tag(title: str, padding: int) -> bytes:
    """An ID3v2.3 tag holding a title (TIT2, UTF-16) and zero padding, as taggers write it."""
    text = b"\x01" + title.encode("utf-16")
    body = b"TIT2" + struct.pack(">I", len(text)) + b"\0\0" + text + bytes(padding)
    size = len(body)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + syncsafe + body


def ape_tag(items: dict[str, str]) -> bytes:
    """An APEv2 tag with header and footer, as foobar2000 or mp3gain append it."""
    body = b"".join(struct.pack("<II", len(v.encode()), 0) + k.encode() + b"\0" + v.encode()
                    for k, v in items.items())

    def edge(flags: int) -> bytes:
        return (b"APETAGEX" + struct.pack("<IIII", 2000, len(body) + 32, len(items), flags)
                + bytes(8))

    return edge(0xA0000000) + body + edge(0x80000000)


def test_audio_upload_accepts_ogg_vorbis_normalised_like_the_other_formats(bed):
    quiet = ogg_bytes(noise(2.5) * 0.3, channels=2)
    resp = bed.upload(quiet, title="Thông báo tiêm chủng", name="tiem-chung.ogg")
    assert resp.status_code == 201, resp.text
    record = resp.json()
    assert record["format"] == "ogg"
    assert abs(record["duration_s"] - 2.5) < 0.01
    assert record["loudness_lufs"] < -30
    assert abs(rendition_loudness(bed, record["sha256"]) - (-16.0)) < 0.5


def test_audio_upload_refuses_truncated_mp3_and_ogg_with_clear_error(bed):
    mp3 = mp3_bytes(noise(2.0))
    mid_frame = frame_starts(mp3)[40] + 200
    resp = bed.upload(mp3[:mid_frame], name="cut.mp3")
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error.startswith("the MP3 file is truncated: its last MPEG-1 layer III frame")
    assert "only 200 remain" in error
    ogg = ogg_bytes(noise(2.0))
    resp = bed.upload(ogg[: len(ogg) // 2], name="cut.ogg")
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("the OGG file is truncated: its last page")
    assert bed.http.get(bed.url("/api/v1/audio")).json() == []


def test_audio_add_cli_reports_truncated_ogg(tmp_path, capsys):
    whole = ogg_bytes(noise(2.0))
    cut = tmp_path / "bantin.ogg"
    cut.write_bytes(whole[:ogg_page_starts(whole)[-2]])  # the end-of-stream page is missing
    with pytest.raises(SystemExit) as exit_:
        controller_main(["--data", str(tmp_path / "data"), "audio", "add", str(cut),
                         "--title", "Bản tin"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "the OGG file is truncated" in err
    assert "lacks the end-of-stream flag" in err


@pytest.mark.parametrize("rate, channels", [(44100, 1), (48000, 2), (32000, 1), (22050, 2),
                                            (16000, 1), (11025, 1), (8000, 2)])
def test_mp3_from_lameenc_accepted_at_mpeg_1_2_and_2_5_rates(rate, channels):
    data = mp3_bytes(noise(1.5, rate), rate, channels=channels, bit_rate=64)
    assert mp3_truncation(data) is None
    fmt, _samples, duration = decode(data)
    assert fmt == "mp3" and duration > 1.5


def test_mpeg_frame_lengths_follow_bit_rate_and_sample_rate():
    data = mp3_bytes(noise(2.0))  # 128 kbit/s at 44.1 kHz: 144 * 128000 / 44100 = 417.96
    starts = frame_starts(data)
    assert starts[-1] == len(data)
    assert {b - a for a, b in zip(starts, starts[1:], strict=False)} == {417, 418}
    low = mp3_bytes(noise(2.0, 8000), 8000, bit_rate=32)  # MPEG-2.5: 72 * 32000 / 8000
    frame = mpeg_frame(low, 0)
    assert frame is not None
    assert (frame.name, frame.length, frame.samples) == ("MPEG-2.5 layer III", 288, 576)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_mp3_cut_mid_frame_is_truncated(cut):
    data = mp3_bytes(noise(2.0))
    starts = frame_starts(data)
    at = starts[int(cut * len(starts))] + 150
    problem = mp3_truncation(data[:at])
    assert problem is not None and "bytes but only 150 remain" in problem
    assert mp3_truncation(data[:len(data) - 1]) is not None
    assert mp3_truncation(data[:starts[10] + 2]) == (
        f"it ends inside the header of the frame at byte {starts[10]}")
    with pytest.raises(AudioError, match="the MP3 file is truncated"):
        decode(data[:at])


@pytest.mark.parametrize("constant, kind", [(False, "Xing"), (True, "Info")])
def test_mp3_cut_on_a_frame_boundary_is_truncated_by_its_xing_or_info_header(constant, kind):
    data = lame_tagged_mp3_bytes(noise(3.0), channels=2 if constant else 1, constant=constant)
    assert kind.encode() in data[:64]
    assert mp3_truncation(data) is None
    starts = frame_starts(data)
    assert starts[-1] == len(data)
    frames = len(starts) - 2  # audio frames after the one carrying the header
    for keep in (10, frames // 2, frames - 5):
        problem = mp3_truncation(data[:starts[keep + 1]])
        assert problem is not None
        assert problem.startswith(f"its {kind} header declares {frames} frames")
        assert f"but it holds {keep} " in problem
    last_frame_missing = mp3_truncation(data[:starts[-2]])
    assert last_frame_missing == (f"its {kind} header declares {len(data)} bytes of audio "
                                  f"but the file holds {starts[-2]}")


def test_mp3_with_id3v2_id3v1_and_ape_tags_accepted_and_still_checked():
    tag = id3v2_tag("Bản tin sáng", padding=1500)  # > 127 bytes: the syncsafe size matters
    lame = lame_tagged_mp3_bytes(noise(3.0), title="Ban tin sang")  # LAME appends ID3v1
    id3v1 = lame[-128:]
    assert id3v1[:3] == b"TAG"
    ape = ape_tag({"Title": "Bản tin sáng", "REPLAYGAIN_TRACK_GAIN": "-3.2 dB"})
    plain = mp3_bytes(noise(2.0))
    variants = {"id3v2": tag + plain, "id3v2+xing+id3v1": tag + lame, "ape": plain + ape,
                "xing+ape+id3v1": lame[:-128] + ape + id3v1}
    for name, data in variants.items():
        assert mp3_truncation(data) is None, name
        assert decode(data)[0] == "mp3", name
    tagged = variants["id3v2+xing+id3v1"]
    starts = frame_starts(tagged, len(tag))
    assert "Xing header declares" in (mp3_truncation(tagged[:starts[30]]) or "")
    assert "bytes but only 99 remain" in (mp3_truncation(tagged[:starts[30] + 99]) or "")
    assert mp3_truncation(tag[:700]) == (
        f"its ID3 tag declares {len(tag)} bytes but the file has 700")


def test_mp3_cut_then_tagged_is_truncated():
    """A partly downloaded file that a tag editor then labelled: the tags at the end
    must not hide the cut."""
    plain = mp3_bytes(noise(2.0))
    cut = frame_starts(plain)[50] + 120
    id3v1 = lame_tagged_mp3_bytes(noise(1.0), title="Ban tin")[-128:]
    problem = mp3_truncation(plain[:cut] + id3v1)
    assert problem is not None
    assert problem.endswith("bytes but only 120 come before the tags at its end")
    lame = lame_tagged_mp3_bytes(noise(3.0))
    boundary = frame_starts(lame)[-2]  # the last frame is missing
    problem = mp3_truncation(lame[:boundary] + ape_tag({"Title": "Bản tin"}))
    assert problem == (f"its Xing header declares {len(lame)} bytes of audio "
                       f"but the file holds {boundary}")


def test_mp3_vbri_header_declaring_more_frames_is_truncated():
    """No encoder here writes Fraunhofer's VBRI header, so this one is put into the first
    frame of a real LAME file (in place of its Xing header) at its documented offset."""
    data = bytearray(lame_tagged_mp3_bytes(noise(3.0)))
    starts = frame_starts(bytes(data))
    frames = len(starts) - 2
    data[21:36 + 26] = bytes(36 + 26 - 21)  # the Xing header (after 17 bytes of side info)
    data[36:36 + 18] = b"VBRI" + struct.pack(">HHHII", 1, 576, 75, len(data), frames)
    assert mp3_truncation(bytes(data)) is None
    problem = mp3_truncation(bytes(data[:starts[20]]))
    assert problem is not None and problem.startswith(f"its VBRI header declares {frames} frames")


@pytest.mark.parametrize("channels", [1, 2])
def test_ogg_cut_mid_page_or_on_a_page_boundary_is_truncated(channels):
    data = ogg_bytes(noise(3.0), channels=channels)
    assert ogg_truncation(data) is None
    starts = ogg_page_starts(data)
    assert starts[-1] == len(data) and len(starts) > 5
    for at in (starts[2] + 100, len(data) // 2, len(data) - 1):
        problem = ogg_truncation(data[:at])
        assert problem is not None and "bytes but only" in problem
    for page in (2, len(starts) - 2):
        assert ogg_truncation(data[:starts[page]]) == (
            f"its last page (at byte {starts[page - 1]}) lacks the end-of-stream flag")
    assert ogg_truncation(data[:starts[3] + 2]) == (
        f"it ends inside the header of the page at byte {starts[3]}")
    with pytest.raises(AudioError, match="the OGG file is truncated"):
        decode(data[:starts[-2]])


def test_second_upload_while_one_is_processed_gets_503_with_retry_after(bed):
    """Uploads are processed one at a time; the second is refused before its body is read."""
    bed.ctl.audio_library.acquire_slot()  # as an upload being processed holds it
    try:
        busy = bed.upload(noise_wav(1.0), title="Hai")
    finally:
        bed.ctl.audio_library.release_slot()
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
    assert "upload" in busy.json()["error"]
    assert bed.upload(noise_wav(1.0), title="Hai").status_code == 201


def test_audio_longer_than_three_hours_is_refused_from_its_header(bed):
    """A decode bomb: a 64 kB WAV whose header declares 4 hours of 8 kHz audio."""
    header = io.BytesIO()
    with wave.open(header, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 64_000)
    data = bytearray(header.getvalue())
    data[40:44] = (4 * 3600 * 8000).to_bytes(4, "little")  # the data chunk's size
    data[4:8] = (len(data) - 8 + 4 * 3600 * 8000 - 64_000).to_bytes(4, "little")
    resp = bed.upload(bytes(data), title="Bom")
    assert resp.status_code == 400
    assert "4:00:00" in resp.json()["error"] and "3:00:00" in resp.json()["error"]
