"""The controller's side of the kiosk, over the real broker and the real HTTP API:
roster and attribution, rating filters and statistics, alerts, follow-up cases."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import requests

from conftest import wait_for
from controller.access.tokens import create_token
from node_runtime.session import MqttSession
from wire.messages import format_ts, utc_now
from wire.rating import EVENT_RATING, EVENT_RATING_DETAIL
from wire.topics import ALERTS


class Api:
    """The HTTP API as a leader's tool would use it."""

    def __init__(self, controller):
        self.url = controller.api_url
        token = controller.writer.call(lambda db: create_token(db, "test"))
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body=None, **query):
        response = requests.request(method, self.url + path, json=body, params=query,
                                    headers=self.headers, timeout=10)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()


@pytest.fixture
def api(controller) -> Api:
    return Api(controller)


def rate(node, level: int, **data):
    body = {"level": level, "scale": 4, "reasons": [], "misuse": False, **data}
    return node.emit(EVENT_RATING, body)


def on_duty(api, kiosk: str, officer: str, desk: str | None = None) -> None:
    """Put ``officer`` on duty from now at the kiosk's desk (a later shift wins)."""
    desk = desk or f"desk-{kiosk}"
    api("PUT", f"/api/v1/officers/{officer}", {"name": officer.title()})
    api("PUT", f"/api/v1/desks/{desk}", {"name": desk, "kiosk": kiosk})
    now = utc_now()
    api("POST", "/api/v1/roster", {"desk": desk, "officer": officer,
                                   "start": format_ts(now - dt.timedelta(milliseconds=1)),
                                   "end": format_ts(now + dt.timedelta(hours=3))})


def test_roster_officer_on_duty_reaches_kiosk_config_and_ratings(controller, make_node, api):
    node = make_node("kiosk-c1", controller=controller)
    api("PUT", "/api/v1/officers/lan", {"name": "Nguyễn Thị Lan", "title": "Công chức tư pháp"})
    api("PUT", "/api/v1/desks/mot-cua-1", {"name": "Quầy 1", "kiosk": "kiosk-c1"})
    now = utc_now()
    api("POST", "/api/v1/roster", {"desk": "mot-cua-1", "officer": "lan",
                                   "start": format_ts(now - dt.timedelta(hours=1)),
                                   "end": format_ts(now + dt.timedelta(hours=3))})
    wait_for(lambda: node.desired.get("duty"))
    assert node.desired["desk"] == "Quầy 1"
    assert node.desired["duty"][0]["officer"]["name"] == "Nguyễn Thị Lan"
    rate(node, 2)  # the kiosk named no officer: the roster's is used
    got = wait_for(lambda: api("GET", "/api/v1/ratings", officer="lan"))
    assert got[0]["desk"] == "mot-cua-1" and got[0]["officer"] == "lan"


def test_rating_desk_and_officer_come_from_the_roster_not_the_kiosk(controller, make_node,
                                                                   api):
    node = make_node("kiosk-c11", controller=controller)
    on_duty(api, "kiosk-c11", "lan", desk="mot-cua-2")
    rate(node, 1, desk_id="other-desk", officer={"id": "mallory", "name": "M"})
    got = wait_for(lambda: api("GET", "/api/v1/ratings", device="kiosk-c11"))
    assert got[0]["desk"] == "mot-cua-2" and got[0]["officer"] == "lan"
    assert got[0]["data"]["officer"]["id"] == "mallory"  # what the kiosk said, kept
    # A kiosk the controller has at no desk: its ratings are attributed to no one.
    stray = make_node("kiosk-c12", controller=controller)
    rate(stray, 4, desk_id="mot-cua-2", officer={"id": "lan"})
    got = wait_for(lambda: api("GET", "/api/v1/ratings", device="kiosk-c12"))
    assert got[0]["desk"] is None and got[0]["officer"] is None


def test_paced_ballot_stuffing_is_flagged_and_alerted(controller, make_node, api,
                                                     monkeypatch):
    """One tap every 12 s for an hour passes the kiosk's rapid-tap check; the controller
    flags the kiosk's ratings once they pass 120 in an hour, and alerts once."""
    from wire import messages
    node = make_node("kiosk-c13", controller=controller)
    start = utc_now() - dt.timedelta(hours=1)
    ticks = iter(range(10_000))
    monkeypatch.setattr(messages, "utc_now",
                        lambda: start + dt.timedelta(seconds=12 * next(ticks)))
    for _ in range(300):
        rate(node, 1)  # "very satisfied", to lift the desk's index
    monkeypatch.undo()
    wait_for(lambda: node.outbox.depth == 0, timeout=30)
    alerts = wait_for(lambda: api("GET", "/api/v1/alerts"))
    assert [(a["kind"], a["desk"]) for a in alerts] == [("pace", "kiosk-c13")]
    assert alerts[0]["answers"] == 121
    # At the 121st, every rating of that hour is flagged, and each later one while the
    # pace lasts.
    assert len(api("GET", "/api/v1/ratings", device="kiosk-c13")) == 0
    assert len(api("GET", "/api/v1/ratings", device="kiosk-c13", include_misuse="true")) == 300
    assert api("GET", "/api/v1/ratings/stats")["count"] == 0


def test_ratings_filters_leave_misuse_out_unless_asked(controller, make_node, api):
    node = make_node("kiosk-c2", controller=controller)
    on_duty(api, "kiosk-c2", "a")
    rate(node, 1)
    rate(node, 1, misuse=True)
    wait_for(lambda: node.outbox.depth == 0)
    on_duty(api, "kiosk-c2", "b")
    rate(node, 3)
    wait_for(lambda: node.outbox.depth == 0)
    assert len(api("GET", "/api/v1/ratings")) == 2
    assert len(api("GET", "/api/v1/ratings", include_misuse="true")) == 3
    assert [r["level"] for r in api("GET", "/api/v1/ratings", officer="b")] == [3]
    future = format_ts(utc_now() + dt.timedelta(hours=1))
    assert api("GET", "/api/v1/ratings", since=future) == []


def test_stats_give_satisfaction_index_by_officer_and_reason(controller, make_node, api):
    node = make_node("kiosk-c3", controller=controller)
    for officer, levels in (("a", (1, 2, 4)), ("b", (3,))):
        on_duty(api, "kiosk-c3", officer)
        for level in levels:
            rate(node, level, ts_local="2026-03-02T09:15:00.000+07:00")
        wait_for(lambda: node.outbox.depth == 0)
    bad = rate(node, 4, ts_local="2026-03-02T14:00:00.000+07:00")
    node.emit(EVENT_RATING_DETAIL, {"rating_id": bad["id"], "reasons": ["waited", "papers"]})
    wait_for(lambda: node.outbox.depth == 0)
    stats = api("GET", "/api/v1/ratings/stats")
    assert stats["count"] == 5 and stats["satisfaction_index"] == 0.4
    by_officer = {g["key"]: g for g in stats["by"]["officer"]}
    assert by_officer["a"]["satisfaction_index"] == round(2 / 3, 4)
    assert by_officer["b"]["satisfaction_index"] == 0.0
    assert {g["key"]: g["count"] for g in stats["by"]["hour"]} == {9: 4, 14: 1}
    assert {g["key"] for g in stats["by"]["reason"]} == {"waited", "papers"}
    assert {g["key"]: g["count"] for g in stats["by"]["level"]}["4/4"] == 2


def test_alert_raised_published_and_listed_for_negative_desk(controller, make_node, api,
                                                             broker):
    received: list[dict] = []
    got_one = threading.Event()
    listener = MqttSession("alert-listener", broker.peer_settings())
    listener.subscribe(ALERTS, lambda t, p: (received.append(json.loads(p)), got_one.set()))
    listener.start()
    try:
        wait_for(listener.is_connected.is_set)
        node = make_node("kiosk-c4", controller=controller)
        for level in (1, 4, 4):
            rate(node, level)
        wait_for(lambda: node.outbox.depth == 0)
        assert api("GET", "/api/v1/alerts") == []  # only 3 answers so far
        rate(node, 4)
        alerts = wait_for(lambda: api("GET", "/api/v1/alerts"))
        assert alerts[0]["desk"] == "kiosk-c4" and alerts[0]["negative"] == 3
        assert got_one.wait(10) and received[0]["answers"] == 4
        rate(node, 4)  # the same window alerts once
        wait_for(lambda: node.outbox.depth == 0)
        assert len(api("GET", "/api/v1/alerts")) == 1
    finally:
        listener.close()


def test_alert_rules_are_configurable_and_survive_restart(make_controller, make_node):
    first = make_controller()
    Api(first)("PUT", "/api/v1/alerts/rules", {"min_answers": 2, "negative_share": 1.0})
    first.close()
    controller = make_controller()
    api = Api(controller)
    assert api("GET", "/api/v1/alerts/rules")["min_answers"] == 2
    node = make_node("kiosk-c5", controller=controller)
    rate(node, 4)
    rate(node, 4)
    assert wait_for(lambda: api("GET", "/api/v1/alerts"))[0]["answers"] == 2


def test_dissatisfied_rating_opens_case_leaders_can_close(controller, make_node, api):
    node = make_node("kiosk-c6", controller=controller)
    rate(node, 1)
    rate(node, 4, misuse=True)  # flagged: no case
    bad = rate(node, 4, dossier_code="H12.34")
    cases = wait_for(lambda: api("GET", "/api/v1/cases"))
    assert len(cases) == 1 and cases[0]["rating"]["id"] == bad["id"]
    assert cases[0]["status"] == "open"
    case = api("PUT", f"/api/v1/cases/{cases[0]['id']}",
               {"status": "contacted", "note": "Đã gọi điện xin lỗi"})
    assert case["status"] == "contacted" and case["note"] == "Đã gọi điện xin lỗi"
    assert api("GET", "/api/v1/cases", status="open") == []


def test_case_update_refuses_unknown_status(controller, api):
    response = requests.put(api.url + "/api/v1/cases/1", json={"status": "lost"},
                            headers=api.headers, timeout=10)
    assert response.status_code == 400 and "expected one of" in response.json()["error"]


def test_stats_leave_misuse_out_unless_asked(controller, make_node, api):
    node = make_node("kiosk-c7", controller=controller)
    rate(node, 1)
    rate(node, 4, misuse=True)
    wait_for(lambda: node.outbox.depth == 0)
    assert api("GET", "/api/v1/ratings/stats", by="level")["count"] == 1
    both = api("GET", "/api/v1/ratings/stats", by="level", include_misuse="true")
    assert both["count"] == 2 and both["satisfaction_index"] == 0.5


def test_roster_refresh_slides_the_kiosks_week_of_shifts(controller, make_node, api):
    """A kiosk running for weeks must learn of shifts that entered its 7-day window."""
    node = make_node("kiosk-c8", controller=controller)
    api("PUT", "/api/v1/officers/binh", {"name": "Lê Văn Bình"})
    api("PUT", "/api/v1/desks/quay-2", {"name": "Quầy 2", "kiosk": "kiosk-c8"})
    now = utc_now()
    start, end = now + dt.timedelta(days=1), now + dt.timedelta(days=1, hours=4)
    # Written as an old roster would be, without a push to the kiosk.
    controller.writer.call(lambda db: db.execute(
        "INSERT INTO roster (desk, officer, start, end) VALUES ('quay-2', 'binh', ?, ?)",
        (format_ts(start), format_ts(end))))
    assert wait_for(lambda: "desk" in node.desired) and node.desired.get("duty") == []
    controller.roster._next_refresh = 0  # the hour has come
    controller.roster.refresh_if_due()
    wait_for(lambda: node.desired.get("duty"))
    assert node.desired["duty"][0]["officer"]["id"] == "binh"


def test_report_csv_per_officer_for_the_district(controller, make_node, api):
    node = make_node("kiosk-c9", controller=controller)
    api("PUT", "/api/v1/officers/lan", {"name": "Nguyễn Thị Lan", "title": "Tư pháp"})
    on_duty(api, "kiosk-c9", "lan")
    api("PUT", "/api/v1/officers/lan", {"name": "Nguyễn Thị Lan", "title": "Tư pháp"})
    for level in (1, 1, 2, 4):
        rate(node, level)
    wait_for(lambda: node.outbox.depth == 0)
    response = requests.get(api.url + "/api/v1/ratings/report.csv", headers=api.headers,
                            timeout=10)
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ("officer,name,title,answers,level 1/4,level 2/4,level 4/4,"
                        "satisfaction_index")
    assert lines[1] == "lan,Nguyễn Thị Lan,Tư pháp,4,2,1,1,0.7500"


def test_rating_with_malformed_officer_is_kept_acked_and_counted(controller, make_node, api):
    """Regression: an officer that is not an object must not make the kiosk resend forever."""
    node = make_node("kiosk-c10", controller=controller)
    rate(node, 1, officer="Lan")
    rate(node, 2)
    wait_for(lambda: node.outbox.depth == 0)
    assert [r["level"] for r in api("GET", "/api/v1/ratings")] == [2]
    assert controller.reader().execute("SELECT count(*) FROM events WHERE device = ?",
                                       ("kiosk-c10",)).fetchone()[0] == 2


def test_batch_with_a_refused_rating_keeps_the_others_and_alerts_once(tmp_path):
    """Ratings are stored optimistically per batch; a refused one makes the batch run again
    with a savepoint per handler: every event kept and acked, the good ratings stored once,
    the alert they raise published once with its stored id."""
    from controller.db.connection import connect
    from controller.db.migrations import migrate
    from controller.db.writer import Writer
    from controller.fleet.ingest import Ingestor
    from controller.fleet.metrics import Metrics
    from controller.ratings import cases
    from controller.ratings import store as ratings
    from controller.ratings.alerts import Alerts
    from wire.messages import new_event

    db = connect(tmp_path / "c.db")
    migrate(db)
    db.execute("INSERT INTO devices (id, role, status, created) VALUES"
               " ('kiosk-b1', 'kiosk', 'approved', 0)")
    writer, metrics = Writer(db), Metrics()
    acks: list[str] = []
    published: list[dict] = []
    ingestor = Ingestor(writer, lambda device, ids: acks.extend(ids), metrics)
    alerts = Alerts(writer, published.append)
    store = ratings.RatingStore([cases.open_case, alerts.check])
    ingestor.register(EVENT_RATING, store.store)
    events = [new_event("kiosk-b1", n, EVENT_RATING, data, clock_synced=True)
              for n, data in enumerate([{"level": 4, "scale": 4}, {"level": 4, "scale": 4},
                                        {"level": 9, "scale": 4},  # refused: no such level
                                        {"level": 4, "scale": 4}, {"level": 4, "scale": 4}],
                                       start=1)]
    for event in events:
        ingestor.accept(event)  # all pending before the writer starts: one batch
    writer.start()
    try:
        wait_for(lambda: len(acks) == 5)
    finally:
        writer.close()
    assert sorted(acks) == sorted(e["id"] for e in events)
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    stored = {r[0] for r in db.execute("SELECT event_id FROM ratings")}
    assert stored == {e["id"] for n, e in enumerate(events) if n != 2}
    assert db.execute("SELECT count(*) FROM cases").fetchone()[0] == 4
    (alert_id,) = [r[0] for r in db.execute("SELECT id FROM alerts")]
    assert [(a["id"], a["answers"], a["negative"]) for a in published] == [(alert_id, 4, 4)]
    assert metrics.snapshot()["rejections"] == {"event_data": 1}
    db.close()


def test_poison_events_are_quarantined_while_other_kiosks_keep_rating(controller, make_node):
    """Regression: a seq above 2^63, an object where a dossier code belongs or a list where
    a rating id belongs raised inside the ingest batch; the whole batch (other devices'
    events with it) was rolled back, never acknowledged, and nothing was counted."""
    bad = make_node("kiosk-p1", controller=controller)
    good = make_node("kiosk-p2", controller=controller)
    poison = [("rating", {"level": 1, "scale": 4, "dossier_code": {"x": 1}}),
              ("rating_detail", {"rating_id": ["a"], "reasons": []}),
              ("rating", {"level": 1, "scale": 4, "officer": {"id": 5}}),
              ("rating", {"level": 2**70, "scale": 4})]
    for n in range(10):
        for type_, data in poison:
            bad.emit(type_, data)
        good.emit("rating", {"level": 1 + n % 4, "scale": 4})
    wait_for(lambda: good.outbox.depth == 0 and bad.outbox.depth == 0, timeout=30)
    assert controller.reader().execute(
        "SELECT count(*) FROM ratings WHERE device = 'kiosk-p2'").fetchone() == (10,)
    assert controller.reader().execute(
        "SELECT count(*) FROM ratings WHERE device = 'kiosk-p1'").fetchone() == (0,)
    health = requests.get(controller.api_url + "/api/v1/health", timeout=5).json()
    assert health["rejections"]["event_data"] == 40
    rows = controller.reader().execute("SELECT type, reason FROM quarantine").fetchall()
    assert len(rows) == 40
    assert any("dossier_code" in reason for _, reason in rows)
    assert any("rating_id" in reason for _, reason in rows)


def test_a_speaker_cannot_file_ratings_nor_a_kiosk_play_receipts(controller, make_node):
    speaker = make_node("spk-r1", controller=controller, role="speaker")
    kiosk = make_node("kiosk-r1", controller=controller)
    speaker.emit("rating", {"level": 4, "scale": 4})
    kiosk.emit("playback", {"occurrence": "1@20261126T010000Z", "status": "played"})
    kiosk.emit("rating", {"level": 1, "scale": 4})
    wait_for(lambda: speaker.outbox.depth == 0 and kiosk.outbox.depth == 0)
    assert controller.reader().execute("SELECT device FROM ratings").fetchall() == [
        ("kiosk-r1",)]
    assert controller.reader().execute(
        "SELECT count(*) FROM playback_receipts").fetchone() == (0,)
    reasons = sorted(r[0] for r in controller.reader().execute(
        "SELECT reason FROM quarantine").fetchall())
    assert reasons == ["ValueError: a kiosk may not file playback events (only speaker, sim)",
                       "ValueError: a speaker may not file rating events (only kiosk, sim)"]


def test_a_kiosk_with_an_untrusted_clock_is_attributed_by_the_controllers_time(
        controller, make_node, api, monkeypatch):
    """After a power cut without a clock battery the kiosk's clock may be years off: the
    officer on duty, the day and the hour come from when the controller received the
    rating, and the rating says so."""
    from wire import messages
    node = make_node("kiosk-c20", controller=controller)
    node.outbox._clock_synced = lambda: False
    on_duty(api, "kiosk-c20", "lan")
    monkeypatch.setattr(messages, "utc_now", lambda: dt.datetime(2020, 1, 1, 3, tzinfo=dt.UTC))
    rate(node, 4, ts_local="2020-01-01T10:00:00+07:00")  # the kiosk's wrong idea of now
    monkeypatch.undo()
    got = wait_for(lambda: api("GET", "/api/v1/ratings", device="kiosk-c20",
                               since="2000-01-01T00:00:00Z"))
    local = dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))
    assert got[0]["officer"] == "lan" and got[0]["time_source"] == "controller"
    assert got[0]["ts"].startswith("2020-01-01")  # the kiosk's own time, kept
    assert got[0]["local_day"] == local.date().isoformat()
    assert abs(got[0]["local_hour"] - local.hour) in (0, 1, 23)
    trusted = make_node("kiosk-c21", controller=controller)
    rate(trusted, 1)
    assert wait_for(lambda: api("GET", "/api/v1/ratings", device="kiosk-c21"))[0][
        "time_source"] == "device"
