"""Operator commands to a speaker, and receipts per hamlet with the CSV playback log."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
from speaker_support import best_match, noise_wav, read_pcm, receipt_of, soon, tones_reference

from conftest import wait_for
from controller.fleet.commands import get_command


def run_command(bed, device: str, name: str, args: dict | None = None, timeout: float = 20):
    command = bed.ctl.commands.create(device, name, args or {}, ttl_s=60)
    return wait_for(lambda: (lambda c: c if c["status"] not in ("pending", "sent") else None)(
        get_command(bed.ctl.reader(), command["id"])), timeout=timeout)



def test_speakers_of_two_hamlets_play_and_the_csv_log_lists_exactly_them(bed):
    audio = bed.upload(noise_wav(1.0)).json()
    outs = {}
    for device, hamlet in (("spk-h-a1", "an-binh"), ("spk-h-b1", "binh-loc"),
                           ("spk-h-c1", "cay-gao")):
        speaker, outs[device], _ = bed.speaker(device, hamlet=hamlet)
    created = bed.schedule(audio["id"], soon(4),
                           targets={"hamlets": ["an-binh", "binh-loc"]}).json()
    for device in ("spk-h-a1", "spk-h-b1"):
        assert wait_for(lambda d=device: receipt_of(bed, created["id"], d),
                        timeout=20)["status"] == "played"
    (occurrence,) = bed.receipts(created["id"])
    assert sorted(s["device"] for s in occurrence["speakers"]) == ["spk-h-a1", "spk-h-b1"]
    resp = bed.http.get(bed.url(f"/api/v1/broadcasts/{created['id']}/receipts"),
                        params={"format": "csv"})
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [(r["device"], r["hamlet"], r["status"]) for r in rows] == [
        ("spk-h-a1", "an-binh", "played"), ("spk-h-b1", "binh-loc", "played")]
    assert all(r["started"] and r["ended"] for r in rows)
    starts = sorted(dt.datetime.fromisoformat(r["started"].replace("Z", "+00:00")) for r in rows)
    assert starts[-1] - starts[0] < dt.timedelta(milliseconds=100)  # on an absolute time
    assert not outs["spk-h-c1"].exists() or outs["spk-h-c1"].stat().st_size == 0
    day = dt.datetime.now(dt.UTC).date()
    log = bed.http.get(bed.url("/api/v1/playback-log"), params={
        "since": f"{day - dt.timedelta(days=1)}T00:00:00Z",
        "until": f"{day + dt.timedelta(days=2)}T00:00:00Z",
        "format": "csv"})
    logged = list(csv.DictReader(io.StringIO(log.text)))
    assert [(r["device"], r["status"], r["title"]) for r in logged] == [
        ("spk-h-a1", "played", "Bản tin"), ("spk-h-b1", "played", "Bản tin")]
    assert bed.http.get(bed.url("/api/v1/playback-log"),
                        params={"since": "yesterday"}).status_code == 400


def test_speaker_status_and_volume_commands(bed):
    audio = bed.upload(noise_wav(1.0)).json()
    bed.speaker("spk-cmd-1")
    bed.schedule(audio["id"], soon(600))
    status = run_command(bed, "spk-cmd-1", "status")
    assert status["status"] == "done"
    result = status["result"]
    assert (result["state"], result["amplifier"], result["volume"]) == ("idle", "off", 0.8)
    assert result["next"]["level"] == "normal"
    wait_for(lambda: run_command(bed, "spk-cmd-1", "status")["result"]["cache"]["missing"] == [])
    assert run_command(bed, "spk-cmd-1", "set_volume", {"volume": 0.25})["result"] == {
        "volume": 0.25}
    bad = run_command(bed, "spk-cmd-1", "set_volume", {"volume": 7})
    assert bad["status"] == "failed" and "expected 0..1" in bad["reason"]


def test_speaker_test_tone_plays_through_the_relay(bed):
    speaker, out, _ = bed.speaker("spk-cmd-2", pin=22)
    done = run_command(bed, "spk-cmd-2", "test_tone", {"seconds": 1.0, "frequency": 1000})
    assert done["status"] == "done" and done["result"]["played_s"] == 1.0
    wait_for(lambda: not speaker.amplifier.is_on)
    assert bed.pin_factory.pin(22).state == 0
    r, _, _ = best_match(read_pcm(out), tones_reference(1000, 1.0))
    assert r > 0.99


def test_stop_cuts_the_playing_item_short_and_cancel_skips_a_future_one(bed):
    long = bed.upload(noise_wav(6.0)).json()
    speaker, out, _ = bed.speaker("spk-cmd-3")
    playing = bed.schedule(long["id"], soon(3)).json()
    later = bed.schedule(long["id"], soon(15)).json()
    wait_for(lambda: speaker.status()["state"] == "playing", timeout=15)
    assert run_command(bed, "spk-cmd-3", "stop")["status"] == "done"
    cut = wait_for(lambda: receipt_of(bed, playing["id"], "spk-cmd-3"))
    assert (cut["status"], cut["reason"]) == ("cut_short", "stopped by operator")
    assert cut["played_s"] < 6.0
    (occ,) = [o for o in speaker.schedule.items if o.broadcast == later["id"]]
    assert run_command(bed, "spk-cmd-3", "cancel", {"occurrence": occ.id})["status"] == "done"
    skipped = wait_for(lambda: receipt_of(bed, later["id"], "spk-cmd-3"), timeout=25)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "cancelled")


def test_resync_reverifies_the_cache_and_fetches_what_is_missing(bed):
    audio = bed.upload(noise_wav(1.0)).json()
    speaker, _, _ = bed.speaker("spk-cmd-4")
    bed.schedule(audio["id"], soon(600))
    wait_for(lambda: speaker.cache.has(audio["sha256"]))
    speaker.cache.path(audio["sha256"]).write_bytes(b"garbage")
    result = run_command(bed, "spk-cmd-4", "resync")["result"]
    assert result["corrupt_deleted"] == 1
    assert result["cache"]["missing"] == []
    assert speaker.cache.load(audio["sha256"])[:4] == b"RIFF"
    assert np.isfinite(result["cache"]["bytes"])
