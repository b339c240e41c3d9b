"""The speaker end to end: real broker, controller, HTTP, PyAudio into ALSA file devices."""

from __future__ import annotations

import datetime as dt
import time

from speaker_support import Recorder, best_match, noise_wav, read_pcm, receipt_of

from conftest import wait_for


def test_speaker_plays_normalised_audio_at_scheduled_time_with_relay_around_it(bed):
    audio = bed.upload(noise_wav(2.0)).json()
    speaker, out, node = bed.speaker("spk-play-1", hamlet="an-binh", pin=17)
    pin = bed.pin_factory.pin(17)
    recorder = Recorder(out, pin)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    created = bed.schedule(audio["id"], start, targets={"hamlets": ["an-binh"]})
    assert created.status_code == 201, created.text
    receipt = wait_for(lambda: receipt_of(bed, created.json()["id"], "spk-play-1"), timeout=20)
    wait_for(lambda: not speaker.amplifier.is_on)  # stream closed: the file is complete
    time.sleep(0.1)
    recorder.stop()
    assert receipt["status"] == "played"
    first = recorder.first_sound()
    assert abs(first - start.timestamp()) < 0.25, first - start.timestamp()
    assert start.timestamp() - recorder.relay_on() >= 0.95
    assert recorder.relay_off_after(recorder.last_growth()) > recorder.last_growth()
    source = bed.rendition(audio["sha256"])
    r, lag, gain = best_match(read_pcm(out), source)
    assert r > 0.99
    assert lag < 48 * 20  # within 20 ms of the file's start
    assert abs(gain - 0.8) < 0.02  # the default volume
