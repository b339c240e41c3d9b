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


def test_pcm_reads_blocks_across_segments_and_scales_without_wrapping():
    from array import array

    from speaker_node.pcm import Pcm, scaled
    tone, item = Pcm(array("h", range(5)).tobytes()), Pcm(array("h", range(5, 12)).tobytes())
    pcm = tone + item + Pcm()
    assert len(pcm) == 12
    blocks = [array("h", pcm.read(pos, 4)).tolist() for pos in range(0, 12, 4)]
    assert blocks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert pcm.read(10, 4) == array("h", [10, 11]).tobytes() and pcm.read(12, 4) == b""
    loud = array("h", [32767, -32768, 1000]).tobytes()
    assert scaled(loud, 1.0) is loud
    assert array("h", scaled(loud, 0.5)).tolist() == [16383, -16384, 500]
