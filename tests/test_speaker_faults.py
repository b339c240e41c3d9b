"""The speaker under faults: clock unsynced, network down, emergency, killed mid-playback."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

from speaker_support import (
    TZ,
    best_match,
    new_device,
    noise_wav,
    read_pcm,
    receipt_of,
    restart,
    soon,
)

from conftest import DEVICE_PASSWORD, node_config, wait_for
from node_runtime.node import Node
from provisioning.identity import DeviceIdentity
from provisioning.node_file import node_file_text
from speaker_node.cli import build


def test_speaker_with_unsynchronised_clock_skips_timed_item_with_receipt(bed):
    audio = bed.upload(noise_wav(1.0)).json()
    _, out, _ = bed.speaker("spk-clock-1", clock_synced=lambda: False)
    created = bed.schedule(audio["id"], soon(3), targets={"speakers": ["spk-clock-1"]}).json()
    receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-clock-1"), timeout=20)
    assert (receipt["status"], receipt["reason"]) == ("skipped", "clock not synchronised")
    assert not out.exists() or out.stat().st_size == 0
    storm = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                          json={"audio_id": audio["id"], "lead_s": 0.5}).json()
    played = wait_for(lambda: receipt_of(bed, storm["id"], "spk-clock-1"), timeout=20)
    assert played["status"] == "played"  # an emergency plays even on an unsynchronised clock


def test_emergency_preempts_playing_item_which_then_resumes(bed):
    bulletin = bed.upload(noise_wav(5.0, seed=2), title="Bản tin").json()
    storm = bed.upload(noise_wav(1.5, seed=3), title="Bão").json()
    speaker, out, _ = bed.speaker("spk-emerg-1")
    bed.http.put(bed.url("/api/v1/speakers/spk-emerg-1/volume"), json={"volume": 0.5})
    start = soon(3)
    normal = bed.schedule(bulletin["id"], start).json()
    wait_for(lambda: speaker.status()["state"] == "playing", timeout=15)
    time.sleep(1.0)
    emergency = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                              json={"audio_id": storm["id"], "lead_s": 0.5}).json()
    storm_receipt = wait_for(lambda: receipt_of(bed, emergency["id"], "spk-emerg-1"),
                             timeout=20)
    normal_receipt = wait_for(lambda: receipt_of(bed, normal["id"], "spk-emerg-1"), timeout=20)
    assert storm_receipt["status"] == "played"
    assert normal_receipt["status"] == "played"  # resumed after the emergency
    assert abs(normal_receipt["played_s"] - 5.0) < 0.05
    stored = bed.ctl.reader().execute(
        "SELECT data FROM playback_receipts WHERE occurrence LIKE ?",
        (f"{normal['id']}@%",)).fetchone()[0]
    assert '"by": "' + str(emergency["id"]) in stored
    wait_for(lambda: not speaker.amplifier.is_on)  # stream closed: the file is complete
    written = read_pcm(out)
    r_storm, lag_storm, gain_storm = best_match(written, bed.rendition(storm["sha256"]))
    assert r_storm > 0.99 and abs(gain_storm - 1.0) < 0.02  # emergencies override the volume
    first_half = bed.rendition(bulletin["sha256"])[:48000]
    last_part = bed.rendition(bulletin["sha256"])[-96000:]
    r1, lag1, gain1 = best_match(written, first_half)
    r2, lag2, _ = best_match(written, last_part)
    assert r1 > 0.99 and abs(gain1 - 0.5) < 0.02
    assert r2 > 0.99 and lag1 < lag_storm < lag2  # bulletin, storm, then the rest of the bulletin


def test_cached_schedule_plays_with_network_down_and_receipt_arrives_later(bed, broker):
    audio = bed.upload(noise_wav(1.5)).json()
    speaker, out, node = bed.speaker("spk-offline-1")
    created = bed.schedule(audio["id"], soon(6)).json()
    wait_for(lambda: speaker.schedule.items and speaker.cache.has(audio["sha256"]), timeout=10)
    broker.process.stop()
    wait_for(lambda: not node.online, timeout=10)
    wait_for(lambda: f"{created['id']}@{speaker.schedule.items[0].start:%Y%m%dT%H%M%SZ}"
             in speaker.ledger.receipt_ids(), timeout=20)
    assert not node.online
    wait_for(lambda: not speaker.amplifier.is_on)
    assert best_match(read_pcm(out), bed.rendition(audio["sha256"]))[0] > 0.99
    broker.process.start()
    receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-offline-1"), timeout=30)
    assert receipt["status"] == "played"


def test_speaker_killed_mid_playback_reports_cut_short_after_restart(bed, broker, tmp_path):
    audio = bed.upload(noise_wav(8.0)).json()
    device, out = new_device(bed.alsa_dir)
    broker.add_device("spk-kill-1")
    bed.ctl.registry.add("spk-kill-1", "speaker")
    config = node_config(tmp_path, broker, "spk-kill-1", role="speaker")
    role = {"controller_url": bed.ctl.api_url, "output_device": device, "amp_lead_s": 1.0}
    config_file = tmp_path / "spk-kill-1.toml"
    config_file.write_text(node_file_text(
        DeviceIdentity("spk-kill-1", "speaker", DEVICE_PASSWORD), mqtt_host="127.0.0.1",
        mqtt_port=broker.port, data_dir=str(config.data_dir),
        runtime={"clock_check": "always", "resend_after": 3.0}, role_settings=role))
    proc = subprocess.Popen([sys.executable, "-m", "speaker_node.cli", "--config",
                             str(config_file)], cwd=str(tmp_path.parent))
    try:
        created = bed.schedule(audio["id"], soon(4)).json()
        wait_for(lambda: out.exists() and out.stat().st_size > 2 * 48000 * 2, timeout=20)
    finally:
        proc.kill()
        proc.wait()
    from dataclasses import replace
    node = Node(replace(config, role_settings=role))
    speaker = build(node)
    node.start()
    try:
        receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-kill-1"), timeout=20)
        assert receipt["status"] == "cut_short"
        assert receipt["reason"] == "device restarted during playback"
        assert 1.0 <= receipt["played_s"] < 8.0
    finally:
        speaker.close()
        node.close()


def test_speaker_off_during_an_item_reports_it_skipped_when_back(bed):
    audio = bed.upload(noise_wav(1.0)).json()
    speaker, out, node = bed.speaker("spk-off-1", late_tolerance_s=2.0)
    created = bed.schedule(audio["id"], soon(8)).json()
    wait_for(lambda: speaker.schedule.items and speaker.cache.has(audio["sha256"]), timeout=10)
    speaker.close()
    node.close()
    time.sleep(11)  # powered off across the whole occurrence
    again = Node(node.config)
    back = build(again)
    again.start()
    try:
        receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-off-1"), timeout=20)
        assert (receipt["status"], receipt["reason"]) == (
            "skipped", "device offline past the item's end")
        assert not out.exists() or out.stat().st_size == 0
    finally:
        back.close()
        again.close()


def test_node_refuses_a_pushed_item_in_its_quiet_hours(bed):
    """Defence in depth: a schedule pushed with quiet hours covering the item is not played,
    whatever the controller checked (the 03:15 wrong relay time)."""
    audio = bed.upload(noise_wav(1.0)).json()
    speaker, out, _ = bed.speaker("spk-quiet-1")
    created = bed.schedule(audio["id"], soon(5)).json()
    wait_for(lambda: speaker.schedule.items, timeout=10)
    section = dict(bed.ctl.broadcasts.schedule_for(bed.ctl.reader(), "spk-quiet-1"))
    now = dt.datetime.now(TZ)
    section["quiet_hours"] = [(now - dt.timedelta(hours=1)).strftime("%H:%M"),
                              (now + dt.timedelta(hours=1)).strftime("%H:%M")]
    bed.ctl.desired_config.set("spk-quiet-1", {"speaker": section})
    receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-quiet-1"), timeout=20)
    assert (receipt["status"], receipt["reason"]) == ("skipped", "quiet hours")
    assert not out.exists() or out.stat().st_size == 0


def test_speaker_restarted_without_network_plays_from_its_stored_schedule_and_cache(
        bed, broker):
    """Regression: the fetcher evicted the whole cache at boot, before the stored
    schedule was applied, so a speaker restarted offline had nothing to play."""
    audio = bed.upload(noise_wav(1.0)).json()
    speaker, out, node = bed.speaker("spk-reboot-1")
    created = bed.schedule(audio["id"], soon(7)).json()
    wait_for(lambda: speaker.schedule.items and speaker.cache.has(audio["sha256"]), timeout=10)
    (occ,) = speaker.schedule.items
    broker.process.stop()
    again, back = restart(speaker, node)
    try:
        wait_for(lambda: occ.id in back.ledger.receipt_ids(), timeout=20)
        assert not again.online
        wait_for(lambda: not back.amplifier.is_on)
        assert best_match(read_pcm(out), bed.rendition(audio["sha256"]))[0] > 0.99
        broker.process.start()
        receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-reboot-1"), timeout=30)
        assert receipt["status"] == "played"
    finally:
        back.close()
        again.close()


def test_cancelling_a_playing_emergency_stops_it_everywhere(bed):
    storm = bed.upload(noise_wav(8.0), title="Bão").json()
    speaker, _, _ = bed.speaker("spk-cancel-1")
    emergency = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                              json={"audio_id": storm["id"], "lead_s": 0.5}).json()
    wait_for(lambda: speaker.status()["state"] == "playing", timeout=15)
    bed.http.delete(bed.url(f"/api/v1/broadcasts/{emergency['id']}"))
    receipt = wait_for(lambda: receipt_of(bed, emergency["id"], "spk-cancel-1"), timeout=15)
    assert (receipt["status"], receipt["reason"]) == ("cut_short", "cancelled")
    assert receipt["played_s"] < 8.0
    assert speaker.schedule.items == ()  # no repeats left


def test_ordered_overlap_plays_the_second_item_after_the_first(bed):
    audio = bed.upload(noise_wav(3.0)).json()
    speaker, _, _ = bed.speaker("spk-order-1")
    start = soon(4)
    first = bed.schedule(audio["id"], start).json()
    second = bed.schedule(audio["id"], start + dt.timedelta(seconds=1), overlap="order").json()
    a = wait_for(lambda: receipt_of(bed, first["id"], "spk-order-1"), timeout=20)
    b = wait_for(lambda: receipt_of(bed, second["id"], "spk-order-1"), timeout=20)
    assert a["status"] == b["status"] == "played"
    assert b["started"] >= a["ended"]


def test_speaker_restarted_just_before_an_item_still_plays_it(bed):
    """Regression: a shutdown during the relay lead reported the item cut short before it
    began, so the restarted node never played it."""
    audio = bed.upload(noise_wav(1.0)).json()
    speaker, _, node = bed.speaker("spk-restart-1")
    created = bed.schedule(audio["id"], soon(4)).json()
    wait_for(lambda: speaker.amplifier.is_on, timeout=15)  # in the lead, before sound
    again, back = restart(speaker, node)
    try:
        receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-restart-1"), timeout=20)
        assert receipt["status"] == "played"
    finally:
        back.close()
        again.close()


def test_speaker_off_when_the_schedule_was_refreshed_still_reports_the_missed_item(bed):
    """A speaker off through an item, whose retained config was replaced meanwhile (the hourly
    refresh), is still told about it and reports it skipped, so no occurrence stays silent."""
    audio = bed.upload(noise_wav(1.0)).json()
    speaker, _, node = bed.speaker("spk-away-1", late_tolerance_s=1.0)
    speaker.close()
    node.close()
    created = bed.schedule(audio["id"], soon(2)).json()
    time.sleep(4)  # the item is over
    bed.ctl.broadcasts.set_volume("speaker", "spk-away-1", 0.5)  # replaces the retained config
    again = Node(node.config)
    back = build(again)
    again.start()
    try:
        receipt = wait_for(lambda: receipt_of(bed, created["id"], "spk-away-1"), timeout=20)
        assert (receipt["status"], receipt["reason"]) == (
            "skipped", "device offline past the item's end")
        wait_for(lambda: not [i for i in bed.ctl.broadcasts.schedule_for(
            bed.ctl.reader(), "spk-away-1")["items"]])  # reported: no longer pushed
    finally:
        back.close()
        again.close()


def test_priority_preempts_a_normal_item_which_then_resumes_and_both_have_receipts(bed):
    """Circular 39/2020's levels: a priority bulletin does not wait for a normal one that
    plays; the normal one resumes where it stopped once the priority one has played."""
    bulletin = bed.upload(noise_wav(6.0, seed=4), title="Bản tin thường").json()
    notice = bed.upload(noise_wav(1.5, seed=5), title="Thông báo ưu tiên").json()
    speaker, out, _ = bed.speaker("spk-prio-1")
    start = soon(3)
    normal = bed.schedule(bulletin["id"], start).json()
    assert "id" in normal, normal
    priority = bed.schedule(notice["id"], start + dt.timedelta(seconds=2),
                            level="priority").json()
    assert "id" in priority, priority  # overlapping a lower level is allowed: it pre-empts
    normal_receipt = wait_for(lambda: receipt_of(bed, normal["id"], "spk-prio-1"), timeout=30)
    priority_receipt = wait_for(lambda: receipt_of(bed, priority["id"], "spk-prio-1"),
                                timeout=10)
    assert priority_receipt["status"] == "played"
    started = dt.datetime.fromisoformat(priority_receipt["started"].replace("Z", "+00:00"))
    late = (started - (start + dt.timedelta(seconds=2))).total_seconds()
    assert abs(late) < 0.5  # on time, not after the normal item
    assert normal_receipt["status"] == "played" and abs(normal_receipt["played_s"] - 6.0) < 0.05
    stored = bed.ctl.reader().execute(
        "SELECT data FROM playback_receipts WHERE occurrence LIKE ?",
        (f"{normal['id']}@%",)).fetchone()[0]
    assert '"by": "' + str(priority["id"]) + "@" in stored
    wait_for(lambda: not speaker.amplifier.is_on)
    written = read_pcm(out)
    _, lag_first, _ = best_match(written, bed.rendition(bulletin["sha256"])[:48000])
    _, lag_notice, _ = best_match(written, bed.rendition(notice["sha256"]))
    _, lag_rest, _ = best_match(written, bed.rendition(bulletin["sha256"])[-96000:])
    assert lag_first < lag_notice < lag_rest
    # Two items of the same level still may not overlap.
    clash = bed.schedule(bulletin["id"], soon(60))
    again = bed.schedule(bulletin["id"], soon(61))
    assert clash.status_code == 201 and again.status_code == 400


def test_a_cancelled_emergency_never_comes_back_from_a_broker_killed_before_its_autosave(
        bed, broker):
    """Mosquitto saves retained messages every 30 s: killed right after an emergency was
    cancelled, it comes back with the schedule that still held it. The speaker never
    applies a config older than the one it runs, and the controller publishes its own
    again on reconnecting: the cancelled emergency does not play."""
    import threading
    audio = bed.upload(noise_wav(1.0, seed=6)).json()
    speaker, out, node = bed.speaker("spk-stale-1")
    storm = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                          json={"audio_id": audio["id"], "lead_s": 25}).json()
    wait_for(lambda: any(o.emergency for o in speaker.schedule.items), timeout=10)
    at = next(o.start for o in speaker.schedule.items if o.emergency)
    stale = (node.config_version, dict(node.desired))  # what the broker will hand back
    broker.process.stop()  # saved to disk now: the schedule with the emergency
    broker.process.start()
    wait_for(lambda: node.online and bed.ctl.hub.session.is_connected.is_set(), timeout=20)
    cancelled = bed.http.delete(bed.url(f"/api/v1/broadcasts/{storm['id']}"))
    assert cancelled.status_code == 200, cancelled.text
    wait_for(lambda: not any(o.emergency for o in speaker.schedule.items), timeout=10)
    running = node.config_version
    came_back: list[int] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(0.01):
            if any(o.emergency for o in speaker.schedule.items):
                came_back.append(node.config_version)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        broker.process.kill()  # within a second of the cancel, before any autosave
        broker.process.start()
        wait_for(lambda: node.online and bed.ctl.hub.session.is_connected.is_set(),
                 timeout=20)
        time.sleep(1)
        # Whether the broker's stale copy reached the node before the controller's own
        # replaced it is a race; hand it the stale one for certain, as the broker can.
        bed.ctl.hub.publish_config("spk-stale-1", *stale)
        time.sleep(2)  # it has arrived and been refused
    finally:
        watching.set()
        watcher.join()
    assert came_back == [] and node.config_version >= running
    time.sleep(max(0.0, (at - dt.datetime.now(dt.UTC)).total_seconds() + 2))
    receipt = receipt_of(bed, storm["id"], "spk-stale-1")
    assert receipt is None or receipt["status"] != "played", receipt
    assert not out.exists() or out.stat().st_size == 0


def test_a_week_offline_the_speaker_still_plays_on_its_holdover_but_not_after_a_reboot(
        bed, tmp_path):
    """The kernel gives up on an unsynchronised clock after ~9 hours; the speaker keeps
    trusting it while its drift is bounded (a week at 50 ppm is ~30 s), and says so in the
    receipt; rebooted offline without a real-time clock, it plays no timed item."""
    from node_runtime.clock import ClockTrust
    state = {"ntp": True, "mono": 1000.0, "boot": "b1"}
    trust = ClockTrust(tmp_path / "clock.json", kernel_synced=lambda: state["ntp"],
                       monotonic=lambda: state["mono"], boot=lambda: state["boot"],
                       rtc=lambda: None)
    assert trust()  # synced, recorded
    state["ntp"], state["mono"] = False, 1000.0 + 7 * 86400  # a week without network
    audio = bed.upload(noise_wav(1.0, seed=8)).json()
    _, out, _ = bed.speaker("spk-week-1", clock_synced=trust)
    week = bed.schedule(audio["id"], soon(3), targets={"speakers": ["spk-week-1"]}).json()
    played = wait_for(lambda: receipt_of(bed, week["id"], "spk-week-1"), timeout=20)
    assert played["status"] == "played"
    stored = bed.ctl.reader().execute(
        "SELECT data FROM playback_receipts WHERE occurrence LIKE ?",
        (f"{week['id']}@%",)).fetchone()[0]
    assert '"clock": "holdover \\u00b130.2 s"' in stored or "holdover ±30.2 s" in stored
    state["boot"] = "b2"  # a power cut: rebooted, still offline, no clock battery
    rebooted = ClockTrust(tmp_path / "clock.json", kernel_synced=lambda: False,
                          monotonic=lambda: 5.0, boot=lambda: "b2", rtc=lambda: None)
    _, out2, _ = bed.speaker("spk-week-2", clock_synced=rebooted)
    again = bed.schedule(audio["id"], soon(8), targets={"speakers": ["spk-week-2"]}).json()
    skipped = wait_for(lambda: receipt_of(bed, again["id"], "spk-week-2"), timeout=25)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "clock not synchronised")
