"""Broadcasts at the controller: targets, quiet hours, overlaps, volumes, pushed schedules."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from speaker_support import TZ, noise_wav

from controller.fleet.desired_config import get_desired


def setup_hamlets(bed) -> int:
    for device, hamlet in (("spk-a1", "an-binh"), ("spk-a2", "an-binh"), ("spk-b1", "binh-loc"),
                           ("spk-c1", "cay-gao")):
        bed.ctl.registry.add(device, "speaker", hamlet=hamlet)
    return bed.upload(noise_wav(2.0)).json()["id"]


def pushed(bed, device: str) -> list[dict]:
    return get_desired(bed.ctl.reader(), device)["config"].get("speaker", {}).get("items", [])


def at_local(hour: int, minute: int = 0, days: int = 1) -> dt.datetime:
    day = dt.datetime.now(TZ).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), TZ)


def daytime(bed, days: int = 1) -> dt.datetime:
    """A time outside the test's quiet hours."""
    quiet_from = bed.ctl.broadcasts.quiet_hours[0]
    base = dt.datetime.combine(dt.datetime.now(TZ).date() + dt.timedelta(days=days),
                               quiet_from, TZ)
    return base - dt.timedelta(hours=3)


def test_broadcast_to_two_hamlets_is_pushed_to_exactly_their_speakers(bed):
    audio = setup_hamlets(bed)
    resp = bed.schedule(audio, daytime(bed), rrule="FREQ=DAILY;COUNT=10",
                        targets={"hamlets": ["an-binh", "binh-loc"]})
    assert resp.status_code == 201, resp.text
    for device in ("spk-a1", "spk-a2", "spk-b1"):
        items = pushed(bed, device)
        assert len(items) >= 7  # a week or more ahead
        assert items[0]["sha256"] and items[0]["level"] == "normal"
    assert pushed(bed, "spk-c1") == []


def test_broadcast_in_quiet_hours_is_refused_but_emergency_plays(bed):
    audio = setup_hamlets(bed)
    bed.ctl.broadcasts.quiet_hours = (dt.time(21, 0), dt.time(5, 30))
    night = at_local(3, 15)
    resp = bed.schedule(audio, night)
    assert resp.status_code == 400
    assert "quiet hours (21:00–05:30)" in resp.json()["error"]
    now = dt.datetime.now(TZ)
    bed.ctl.broadcasts.quiet_hours = ((now - dt.timedelta(hours=1)).time(),
                                      (now + dt.timedelta(hours=1)).time())
    emergency = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                              json={"audio_id": audio, "title": "Bão số 9"})
    assert emergency.status_code == 201, emergency.text
    assert emergency.json()["level"] == "emergency"
    items = pushed(bed, "spk-c1")
    assert [i["level"] for i in items[:2]] == ["emergency", "emergency"]
    gap = (dt.datetime.fromisoformat(items[1]["start"].replace("Z", "+00:00"))
           - dt.datetime.fromisoformat(items[0]["start"].replace("Z", "+00:00")))
    assert gap == dt.timedelta(hours=2)  # Decision 18/2021: rebroadcast every 2 hours


def test_overlapping_broadcast_is_rejected_unless_ordered(bed):
    audio = setup_hamlets(bed)
    start = daytime(bed)
    assert bed.schedule(audio, start, targets={"hamlets": ["an-binh"]}).status_code == 201
    clash = bed.schedule(audio, start + dt.timedelta(seconds=1),
                         targets={"speakers": ["spk-a2"]})
    assert clash.status_code == 400
    assert "overlaps broadcast" in clash.json()["error"]
    assert "overlap='order'" in clash.json()["error"]
    elsewhere = bed.schedule(audio, start + dt.timedelta(seconds=1),
                             targets={"hamlets": ["cay-gao"]})
    assert elsewhere.status_code == 201
    ordered = bed.schedule(audio, start + dt.timedelta(seconds=1),
                           targets={"speakers": ["spk-a2"]}, overlap="order")
    assert ordered.status_code == 201
    assert [i["order"] for i in pushed(bed, "spk-a2")] == [False, True]


def test_bad_broadcasts_get_clear_errors(bed):
    audio = setup_hamlets(bed)
    start = daytime(bed)
    cases = [
        ({"audio_id": 999, "start": "2030-01-01T08:00"}, "no audio 999"),
        ({"audio_id": audio, "start": "2030-01-01T08:00", "targets": {"hamlets": ["nowhere"]}},
         "no speakers in hamlet(s) ['nowhere']"),
        ({"audio_id": audio, "start": "2030-01-01T08:00", "level": "urgent"}, "level 'urgent'"),
        ({"audio_id": audio, "start": "2020-01-01T08:00"}, "no occurrence in the future"),
        ({"audio_id": audio, "start": "2030-01-01T08:00", "rrule": "FREQ=SECONDLY"},
         "FREQ=SECONDLY"),
        ({"audio_id": audio, "start": "soon"}, "expected an ISO 8601 time"),
        ({"audio_id": audio, "start": start.isoformat(), "targets": {"speakers": []}},
         "at least one name"),
    ]
    for body, message in cases:
        resp = bed.http.post(bed.url("/api/v1/broadcasts"), json=body)
        assert resp.status_code == 400, body
        assert message in resp.json()["error"], (body, resp.json())


def test_cancel_removes_item_from_every_speaker(bed):
    audio = setup_hamlets(bed)
    created = bed.schedule(audio, daytime(bed), rrule="FREQ=DAILY").json()
    assert pushed(bed, "spk-b1")
    resp = bed.http.delete(bed.url(f"/api/v1/broadcasts/{created['id']}"))
    assert resp.json()["status"] == "cancelled"
    assert pushed(bed, "spk-b1") == []
    assert bed.http.get(bed.url("/api/v1/broadcasts")).json() == []


def test_volume_per_hamlet_and_per_speaker_reaches_the_config(bed):
    setup_hamlets(bed)
    bed.http.put(bed.url("/api/v1/hamlets/an-binh/volume"), json={"volume": 0.5})
    bed.http.put(bed.url("/api/v1/speakers/spk-a2/volume"), json={"volume": 0.3})
    volumes = {d: get_desired(bed.ctl.reader(), d)["config"]["speaker"]["volume"]
               for d in ("spk-a1", "spk-a2")}
    assert volumes == {"spk-a1": 0.5, "spk-a2": 0.3}
    bad = bed.http.put(bed.url("/api/v1/hamlets/an-binh/volume"), json={"volume": 3})
    assert bad.status_code == 400 and "0 to 1" in bad.json()["error"]


def test_quiet_hours_can_be_changed_and_reach_every_speaker(bed):
    audio = setup_hamlets(bed)
    start = daytime(bed)
    created = bed.schedule(audio, start).json()
    local = start.astimezone(TZ)
    window = {"from": (local - dt.timedelta(minutes=30)).strftime("%H:%M"),
              "to": (local + dt.timedelta(minutes=30)).strftime("%H:%M")}
    resp = bed.http.put(bed.url("/api/v1/speakers/quiet-hours"), json=window)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"quiet_hours": [window["from"], window["to"]],
                           "items_now_in_quiet_hours": [created["id"]]}
    section = get_desired(bed.ctl.reader(), "spk-b1")["config"]["speaker"]
    assert section["quiet_hours"] == [window["from"], window["to"]]
    refused = bed.schedule(audio, start + dt.timedelta(days=1))
    assert refused.status_code == 400 and "quiet hours" in refused.json()["error"]
    bad = bed.http.put(bed.url("/api/v1/speakers/quiet-hours"), json={"from": "9pm", "to": "5"})
    assert bad.status_code == 400 and "expected HH:MM" in bad.json()["error"]


def test_new_emergency_replaces_the_previous_one(bed):
    audio = setup_hamlets(bed)
    first = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                          json={"audio_id": audio, "title": "Bão số 9, tin số 1"}).json()
    second = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                           json={"audio_id": audio, "title": "Bão số 9, tin số 2",
                                 "replaces": first["id"]})
    assert second.status_code == 201, second.text
    assert bed.http.get(bed.url(f"/api/v1/broadcasts/{first['id']}")).json()["status"] == \
        "cancelled"
    assert {i["broadcast"] for i in pushed(bed, "spk-a1")} == {second.json()["id"]}
    normal = bed.schedule(audio, daytime(bed)).json()
    refused = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                            json={"audio_id": audio, "replaces": normal["id"]})
    assert refused.status_code == 400 and "not an active emergency" in refused.json()["error"]


@pytest.mark.parametrize("body, message", [
    ({"repeat_s": 60}, "repeat_s 60.0: expected a number from 300"),
    ({"repeat_s": 300, "expires_in_s": 7 * 86400}, "at most 200"),
    ({"expires_in_s": 30 * 86400}, "expires_in_s"),
    ({"lead_s": 1e9}, "lead_s"),
])
def test_emergency_repeats_are_bounded(bed, body, message):
    """Regression: emergencies accepted repeat_s down to 60 with a multi-day expiry:
    thousands of occurrences re-encoded per speaker per push."""
    audio = setup_hamlets(bed)
    resp = bed.http.post(bed.url("/api/v1/broadcasts/emergency"),
                         json={"audio_id": audio, **body})
    assert resp.status_code == 400 and message in resp.json()["error"], resp.text
    assert bed.http.get(bed.url("/api/v1/broadcasts")).json() == []


def test_repeating_item_needs_an_end(bed):
    audio = setup_hamlets(bed)
    resp = bed.schedule(audio, daytime(bed), repeat_s=3600)
    assert resp.status_code == 400 and "needs 'expires'" in resp.json()["error"]


def test_alert_window_is_bounded_and_ratings_keep_storing(bed):
    """Regression: PUT /api/v1/alerts/rules accepted a window of 1e11 s, after which every
    dissatisfied rating failed to store."""
    for window in (1e11, 0, float("inf")):
        resp = bed.http.put(bed.url("/api/v1/alerts/rules"), data=json.dumps(
            {"window_s": window}).replace("Infinity", "1e999"))
        assert resp.status_code == 400, resp.text
    assert bed.http.get(bed.url("/api/v1/alerts/rules")).json()["window_s"] == 900
