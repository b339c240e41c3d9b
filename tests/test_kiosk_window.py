"""The real Kivy kiosk in a real window under Xvfb, tapped through the X server."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import zoneinfo
from collections.abc import Callable, Iterator

import pytest
from conftest import wait_for
from kiosk_window import KioskProcess, Xvfb

from controller.service import Controller
from kiosk import layout
from kiosk.office_hours import DAYS


@pytest.fixture
def xvfb() -> Iterator[Xvfb]:
    server = Xvfb()
    yield server
    server.close()


@pytest.fixture
def make_kiosk(tmp_path: pathlib.Path, broker, xvfb) -> Iterator[Callable[..., KioskProcess]]:
    made: list[KioskProcess] = []

    def make(device_id: str, controller: Controller, **kiosk) -> KioskProcess:
        broker.add_device(device_id)
        if not controller.registry.is_approved(device_id):
            controller.registry.add(device_id, "kiosk")
        proc = KioskProcess(xvfb, tmp_path / device_id, device_id, broker.port, **kiosk)
        made.append(proc)
        return proc.start()

    yield make
    for proc in made:
        proc.close()


def ratings(controller: Controller) -> list[dict]:
    rows = controller.reader().execute(
        "SELECT level, scale, misuse, data FROM ratings ORDER BY ts").fetchall()
    return [{"level": r[0], "scale": r[1], "misuse": bool(r[2]), **json.loads(r[3])}
            for r in rows]


def test_kiosk_window_each_level_tapped_reaches_controller(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w1", controller, misuse_window_s=0, burst_count=100,
                       thank_you_s=0.5, officer={"id": "o-7", "name": "Trần Thị Bình"})
    for level in (1, 2, 3):
        shown = len(kiosk.screens())
        kiosk.tap(layout.face_center(level, 4))
        kiosk.wait_screen("thanks", after=shown)
        kiosk.wait_screen("idle", after=shown + 1)
    got = wait_for(lambda: len(ratings(controller)) == 3 and ratings(controller))
    assert [r["level"] for r in got] == [1, 2, 3]
    assert all(r["officer"]["id"] == "o-7" and r["source"] == "touch" for r in got)
    assert not any(r["misuse"] for r in got)


def test_kiosk_window_follow_up_reasons_reach_controller(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w2", controller, thank_you_s=0.5)
    kiosk.tap(layout.face_center(4, 4))
    kiosk.wait_screen("follow_up")
    kiosk.tap(layout.reason_center(0, 4))  # waited too long
    kiosk.tap(layout.reason_center(3, 4))  # papers again and again
    kiosk.tap(layout.send_center())
    kiosk.wait_screen("thanks")
    got = wait_for(lambda: ratings(controller) and ratings(controller)[0]["reasons"] and
                   ratings(controller))
    assert got[0]["level"] == 4 and got[0]["label"] == "Không hài lòng"
    assert got[0]["reasons"] == ["waited", "papers"]


def test_kiosk_window_unfinished_follow_up_times_out_keeping_answers(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w3", controller, idle_timeout_s=3)
    kiosk.tap(layout.face_center(4, 4))
    kiosk.wait_screen("follow_up")
    kiosk.tap(layout.reason_center(1, 4))  # attitude, then the citizen walks away
    kiosk.wait_screen("idle", after=2)
    got = wait_for(lambda: ratings(controller) and ratings(controller)[0]["reasons"] and
                   ratings(controller))
    assert got[0]["reasons"] == ["attitude"] and got[0]["detail_timed_out"] is True


def test_kiosk_window_quick_second_tap_is_flagged_not_dropped(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w4", controller, thank_you_s=0.5, misuse_window_s=60)
    kiosk.tap(layout.face_center(1, 4))
    kiosk.wait_screen("idle", after=1)
    kiosk.tap(layout.face_center(1, 4))
    kiosk.wait_screen("thanks", after=2)
    got = wait_for(lambda: len(ratings(controller)) == 2 and ratings(controller))
    assert [r["misuse"] for r in got] == [False, True]


def test_kiosk_window_killed_right_after_tap_still_delivers(controller, make_kiosk, broker):
    kiosk = make_kiosk("kiosk-w5", controller, thank_you_s=30)
    broker.process.stop()  # nothing can leave the kiosk before it dies
    kiosk.tap(layout.face_center(2, 4))
    kiosk.wait_screen("thanks")  # shown only once the rating is on disk
    kiosk.kill()
    broker.process.start()
    kiosk.start()  # the same data folder: its outbox still holds the rating
    got = wait_for(lambda: ratings(controller), timeout=30)
    assert [r["level"] for r in got] == [2]


def test_kiosk_window_closed_outside_office_hours_takes_no_rating(controller, make_kiosk):
    # Open only on the weekday after tomorrow (commune time): closed for this whole test.
    local = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh"))
    day = DAYS[(local.weekday() + 2) % 7]
    kiosk = make_kiosk("kiosk-w6", controller,
                       office_hours=[{"days": day, "open": "00:00", "close": "23:59"}])
    kiosk.wait_screen("closed")
    kiosk.tap(layout.face_center(1, 4))
    # A rating tapped now would be logged before any screen change; give it its chance.
    wait_for(lambda: kiosk.log().count("touch at") >= 2)
    assert "rating " not in kiosk.log() and kiosk.screens()[-1] == "closed"
    assert ratings(controller) == []
