"""Device availability: the controller keeps when each device was online, so the model's
report gives the share of a period devices were up, not only who is online today.

Against a real broker, controller and nodes (a node killed goes offline through the
sweep), and the rules of the history on a real database.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from test_documents import Api

from conftest import wait_for
from controller.db.connection import connect
from controller.db.migrations import migrate
from controller.fleet import presence


def test_a_node_online_then_killed_has_its_time_online_counted(controller, make_node):
    api = Api(controller)
    node = make_node("kiosk-p1", controller=controller)
    wait_for(lambda: api("GET", "/api/v1/devices/kiosk-p1")["online"])
    time.sleep(4)  # telemetry every keepalive / 2 (2.5 s) proves it alive meanwhile
    node.session.close()  # the link dies: no will, the sweep notices the silence
    wait_for(lambda: not api("GET", "/api/v1/devices/kiosk-p1")["online"], timeout=20)
    down = time.time()
    rows = controller.reader().execute(
        "SELECT since, until FROM device_presence WHERE device = 'kiosk-p1'").fetchall()
    assert len(rows) == 1 and rows[0][1] is not None
    since, until = rows[0]
    assert until - since >= 2 and until <= down  # closed when last heard, not when noticed

    year = dt.date.today().year
    today = api("GET", "/api/v1/devices/availability", since=f"{year}-01-01",
                until=f"{year + 1}-01-02")
    device = next(d for d in today["devices"] if d["id"] == "kiosk-p1")
    assert device["online_s"] == pytest.approx(until - since, abs=0.2)
    assert 0 < device["availability"] < 1
    kiosks = next(r for r in today["roles"] if r["role"] == "kiosk")
    assert kiosks["devices"] >= 1 and kiosks["online_s"] >= device["online_s"]


def test_the_reports_availability_is_the_apis(controller, make_node):
    api = Api(controller)
    make_node("kiosk-p2", controller=controller)
    wait_for(lambda: api("GET", "/api/v1/devices/kiosk-p2")["online"])
    span = {"since": dt.date.today().isoformat(),
            "until": (dt.date.today() + dt.timedelta(days=2)).isoformat()}
    report = api("GET", "/api/v1/reports/model", **span)["devices"]
    figures = api("GET", "/api/v1/devices/availability", **span)
    by_role = {r["role"]: r["availability"] for r in figures["roles"]}
    for role in report["roles"]:  # online now: both near 1, read a moment apart
        assert role["availability"] == pytest.approx(by_role[role["role"]], abs=0.01)
    refused = api.raw("GET", "/api/v1/devices/availability", since="2026-05-01",
                      until="2026-01-01")
    assert refused.status_code == 400 and "not after since" in refused.json()["error"]
    missing = api.raw("GET", "/api/v1/devices/availability")
    assert missing.status_code == 400 and "give since and until" in missing.json()["error"]


@pytest.fixture
def db(tmp_path):
    db = connect(tmp_path / "c.db")
    migrate(db)
    db.execute("UPDATE presence_tracking SET started = 0")
    for device_id, created in (("sp-1", 1000.0), ("sp-2", 5000.0)):
        db.execute("INSERT INTO devices (id, role, status, created) VALUES (?, 'speaker',"
                   " 'approved', ?)", (device_id, created))
    yield db
    db.close()


def test_a_reconnect_within_a_minute_continues_the_interval(db):
    presence.opened(db, "sp-1", 1000)
    presence.closed(db, ["sp-1"], 2000)
    presence.opened(db, "sp-1", 2030)  # a blip
    presence.opened(db, "sp-1", 2040)  # already open: nothing
    presence.closed(db, ["sp-1"], 3000)
    presence.opened(db, "sp-1", 4000)  # a real outage
    rows = db.execute("SELECT since, until FROM device_presence ORDER BY since").fetchall()
    assert rows == [(1000, 3000), (4000, None)]


def test_availability_counts_from_registration_and_history_up_to_now(db):
    presence.opened(db, "sp-1", 1000)
    presence.closed(db, ["sp-1"], 3000)
    presence.opened(db, "sp-2", 5000)
    figures = presence.availability(db, 0, 100_000, now=9000)
    devices = {d["id"]: d for d in figures["devices"]}
    assert (devices["sp-1"]["observed_s"], devices["sp-1"]["online_s"]) == (8000, 2000)
    assert devices["sp-1"]["availability"] == 0.25
    assert (devices["sp-2"]["observed_s"], devices["sp-2"]["online_s"]) == (4000, 4000)
    assert figures["roles"] == [{"role": "speaker", "devices": 2, "observed_s": 12000,
                                 "online_s": 6000, "availability": 0.5}]
    # A period in the future is not watched yet; history before tracking is not offline.
    assert presence.availability(db, 10_000, 20_000, now=9000)["roles"][0][
        "availability"] is None
    db.execute("UPDATE presence_tracking SET started = 2000")
    assert {d["id"]: d["online_s"] for d in presence.availability(
        db, 0, 100_000, now=9000)["devices"]} == {"sp-1": 1000, "sp-2": 4000}


def test_a_restart_closes_intervals_of_devices_gone_quiet_and_old_rows_are_pruned(db):
    presence.opened(db, "sp-1", 1000)
    presence.opened(db, "sp-2", 5000)
    db.execute("UPDATE devices SET online = 0, last_seen = 1500 WHERE id = 'sp-1'")
    db.execute("UPDATE devices SET online = 1, last_seen = 5500 WHERE id = 'sp-2'")
    presence.reconcile(db)
    assert db.execute("SELECT device, until FROM device_presence ORDER BY device"
                      ).fetchall() == [("sp-1", 1500), ("sp-2", None)]
    assert presence.prune(db, now=1500 + presence.KEEP_DAYS * 86400 + 1) == 1
    assert db.execute("SELECT device FROM device_presence").fetchall() == [("sp-2",)]
