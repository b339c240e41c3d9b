"""The audio library: uploads checked and normalised, files served to devices with ranges."""

from __future__ import annotations

import io
import wave

import numpy as np
import pyloudnorm
import requests
from speaker_support import mp3_bytes, noise_flac, noise_wav, wav_bytes

from conftest import DEVICE_PASSWORD
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
