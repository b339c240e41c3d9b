"""The real Kivy kiosk in a real window under Xvfb, tapped through the X server."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import ssl
import zoneinfo
from collections.abc import Callable, Iterator

import pytest
from kiosk_window import KioskProcess, Xvfb

from conftest import wait_for
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
    shown = len(kiosk.screens())
    kiosk.tap(layout.face_center(4, 4))  # the lowest level asks "why?" first
    kiosk.wait_screen("follow_up", after=shown)
    kiosk.tap(layout.skip_center())
    kiosk.wait_screen("thanks", after=shown + 1)
    got = wait_for(lambda: len(ratings(controller)) == 4 and ratings(controller))
    assert [r["level"] for r in got] == [1, 2, 3, 4]
    assert [r["label"] for r in got] == ["Rất hài lòng", "Hài lòng", "Bình thường",
                                         "Không hài lòng"]
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


def api_token(controller: Controller) -> dict[str, str]:
    from controller.access.tokens import create_token
    token = controller.writer.call(lambda db: create_token(db, "window-test"))
    return {"Authorization": f"Bearer {token}"}


def test_kiosk_window_config_change_applies_without_restart(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w7", controller, thank_you_s=0.5)
    pid = kiosk.process.pid
    controller.desired_config.set("kiosk-w7", {"scale": 3, "language": "en",
                                               "info": ["Đường dây nóng: 0251 3xxx xxx"]})
    wait_for(lambda: "kiosk settings applied: scale 3" in kiosk.log())
    kiosk.tap(layout.face_center(3, 3))  # the lowest of three: "why?"
    kiosk.wait_screen("follow_up")
    kiosk.tap(layout.skip_center())
    kiosk.wait_screen("thanks")
    got = wait_for(lambda: ratings(controller))
    assert got[0]["scale"] == 3 and got[0]["level"] == 3 and got[0]["reasons"] == []
    assert kiosk.process.pid == pid and kiosk.process.poll() is None


def test_kiosk_window_dossier_code_from_keypad_and_scanner(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w8", controller, ask_dossier=True, misuse_window_s=0)
    kiosk.tap(layout.face_center(1, 4))
    kiosk.wait_screen("dossier")
    for key in ("4", "2", "enter"):
        kiosk.tap(layout.key_center(key))
    kiosk.wait_screen("thanks")
    kiosk.wait_screen("idle", after=2)
    kiosk.tap(layout.face_center(2, 4))
    kiosk.wait_screen("dossier", after=3)
    kiosk.type("H26.15")  # a USB scanner types like a keyboard, then Enter
    kiosk.wait_screen("thanks", after=4)
    got = wait_for(lambda: len(ratings(controller)) == 2 and all(
        r.get("dossier_code") for r in ratings(controller)) and ratings(controller))
    assert [r["dossier_code"] for r in got] == ["42", "H26.15"]


def test_kiosk_window_screenshot_command_uploads_png(controller, make_kiosk):
    import requests
    make_kiosk("kiosk-w9", controller)
    headers = api_token(controller)
    command = requests.post(f"{controller.api_url}/api/v1/devices/kiosk-w9/screenshot",
                            headers=headers, json={}, timeout=10).json()
    wait_for(lambda: requests.get(f"{controller.api_url}/api/v1/commands/{command['id']}",
                                  headers=headers, timeout=10).json()["status"] == "done",
             timeout=30)
    png = requests.get(f"{controller.api_url}/api/v1/devices/kiosk-w9/screenshot",
                       headers=headers, timeout=10)
    assert png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and len(png.content) > 5000


def test_kiosk_window_restart_command_exits_for_systemd(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w10", controller)
    command = controller.commands.create("kiosk-w10", "restart")
    kiosk.process.wait(timeout=30)
    assert kiosk.process.returncode == 75  # systemd's Restart=always starts it again
    kiosk.start()
    wait_for(lambda: controller.reader().execute(
        "SELECT status FROM commands WHERE id = ?", (command["id"],)).fetchone()[0] == "done",
             timeout=30)


def test_kiosk_window_language_button_switches_to_english(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w11", controller, thank_you_s=0.5)
    left, right, top, bottom = layout.LANGUAGE_BUTTON
    kiosk.tap(((left + right) / 2, (top + bottom) / 2))
    wait_for(lambda: "language: en" in kiosk.log())
    kiosk.tap(layout.face_center(2, 4))
    got = wait_for(lambda: ratings(controller))
    assert got[0]["language"] == "en" and got[0]["label"] == "Hài lòng"


def test_demo_with_a_display_shows_the_kiosk_and_a_tap_reaches_the_api(tmp_path, xvfb):
    """Issue #3's "done when": `make demo` with DISPLAY set; a tap, with the officer on duty."""
    import signal
    import subprocess
    import sys
    import urllib.request

    from kiosk_window import REPO, attach_window

    demo_dir = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "sim.demo", "--dir", str(demo_dir),
                             "--kiosks", "1"], cwd=REPO, env=xvfb.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (demo_dir / "api-url").exists() and (demo_dir / "api-url").read_text()
                 .strip(), timeout=60)
        url = (demo_dir / "api-url").read_text().strip()
        token = (demo_dir / "admin-token").read_text().strip()
        trust = ssl.create_default_context(cafile=str(demo_dir / "tls" / "ca.crt"))

        def get(path):
            request = urllib.request.Request(url + path,
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=5, context=trust) as response:
                return json.load(response)

        kiosk = attach_window(xvfb, demo_dir / "logs" / "kiosk-window.log")
        wait_for(lambda: kiosk_online(get), timeout=60)
        kiosk.tap(layout.face_center(1, 4))
        rated = wait_for(lambda: get("/api/v1/ratings?device=kiosk-window"), timeout=30)
        assert rated[0]["level"] == 1 and rated[0]["officer"] == "demo-lan"
        # The kiosk itself showed and recorded the officer the roster put on duty.
        assert rated[0]["data"]["officer"]["name"] == "Nguyễn Thị Lan"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output


def kiosk_online(get) -> bool:
    return any(d["id"] == "kiosk-window" and d["online"] for d in get("/api/v1/devices"))


def test_kiosk_window_tells_systemd_ready_and_pings_watchdog(tmp_path, controller, make_kiosk):
    import socket
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(60)
        make_kiosk("kiosk-w12", controller,
                   env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
        messages = [server.recv(100)]
        while b"WATCHDOG=1" not in messages:
            messages.append(server.recv(100))
    assert messages[0] == b"READY=1"


def test_node_withholds_watchdog_while_a_role_check_fails(make_node):
    """A frozen kiosk screen (its check fails) must let systemd's watchdog restart it."""
    node = make_node("kiosk-w13")
    alive = [True]
    node.health_checks.append(lambda: alive[0])
    assert node._healthy()
    alive[0] = False
    assert not node._healthy()


def test_kiosk_window_ten_taps_while_broker_away_all_arrive(controller, make_kiosk, broker):
    kiosk = make_kiosk("kiosk-w14", controller, thank_you_s=0.5, misuse_window_s=0,
                       burst_count=100)
    broker.process.stop()
    for i in range(10):
        shown = len(kiosk.screens())
        kiosk.tap(layout.face_center(1 + i % 3, 4))
        kiosk.wait_screen("thanks", after=shown)
        kiosk.wait_screen("idle", after=shown + 1)
    assert ratings(controller) == []
    broker.process.start()
    got = wait_for(lambda: len(ratings(controller)) == 10 and ratings(controller), timeout=60)
    assert [r["level"] for r in got] == [1 + i % 3 for i in range(10)]
    assert not any(r["misuse"] for r in got)


def test_kiosk_window_portrait_screen_stacks_faces_and_rates(controller, make_kiosk):
    kiosk = make_kiosk("kiosk-w15", controller, size=(480, 800), thank_you_s=0.5)
    kiosk.tap(layout.face_center(2, 4, portrait=True))
    kiosk.wait_screen("thanks")
    got = wait_for(lambda: ratings(controller))
    assert got[0]["level"] == 2


def test_kiosk_window_fetches_the_rostered_officers_photo(controller, make_kiosk):
    import hashlib

    import requests
    headers = api_token(controller)
    api = controller.api_url + "/api/v1"
    kiosk = make_kiosk("kiosk-w16", controller, controller_url=controller.api_url)
    photo = (pathlib.Path(__file__).parent.parent / "docs" / "screenshots" /
             "kiosk-closed-800x480.png").read_bytes()  # any PNG will do
    requests.put(f"{api}/officers/lan", json={"name": "Nguyễn Thị Lan"}, headers=headers,
                 timeout=10).raise_for_status()
    requests.put(f"{api}/officers/lan/photo", data=photo, headers=headers,
                 timeout=10).raise_for_status()
    requests.put(f"{api}/desks/quay-1", json={"name": "Quầy 1", "kiosk": "kiosk-w16"},
                 headers=headers, timeout=10).raise_for_status()
    now = dt.datetime.now(dt.UTC)
    requests.post(f"{api}/roster", headers=headers, timeout=10, json={
        "desk": "quay-1", "officer": "lan",
        "start": (now - dt.timedelta(hours=1)).isoformat(),
        "end": (now + dt.timedelta(hours=1)).isoformat()}).raise_for_status()
    sha = hashlib.sha256(photo).hexdigest()
    wait_for(lambda: f"officer photo {sha[:12]} cached" in kiosk.log(), timeout=30)
    cached = kiosk.config.parent / "data" / "photos" / sha
    assert cached.read_bytes() == photo


def test_kiosk_window_f1_and_escape_never_leave_the_rating_screen(controller, make_kiosk):
    """Regression: F1 on a keyboard (or a scanner programmed to send it) opened Kivy's
    settings panel over the rating screen."""
    kiosk = make_kiosk("kiosk-w20", controller, misuse_window_s=0)
    for key in ("F1", "Escape", "F1"):
        kiosk.key(key)
    wait_for(lambda: "settings panel refused" in kiosk.log())
    shown = len(kiosk.screens())
    kiosk.tap(layout.face_center(1, 4))  # under a settings panel this tap would be lost
    kiosk.wait_screen("thanks", after=shown)
    assert [r["level"] for r in wait_for(lambda: ratings(controller))] == [1]
    assert kiosk.process is not None and kiosk.process.poll() is None


def test_kiosk_window_idle_screen_shows_the_communes_public_phone_numbers(
        controller, make_kiosk):
    """Issue #10 item 5: the numbers managed once at the controller reach the idle screen,
    the desk the roster gave the kiosk kept."""
    kiosk = make_kiosk("kiosk-w17", controller, info=["Wi-Fi: UBND-xa"])
    controller.roster.put_desk("quay-7", {"name": "Quầy 7", "kiosk": "kiosk-w17"})
    controller.public_info.put({
        "hotline": "0251 3861 234",
        "contacts": [{"name": "Lê Thị Mai", "title": "Chủ tịch UBND xã",
                      "phone": "0912 345 102"}],
        "notices": ["Tiếp nhận hồ sơ sáng thứ Bảy."]})
    wait_for(lambda: "idle screen: hotline '0251 3861 234', 2 information pages"
             in kiosk.log(), timeout=30)
    config = controller.reader().execute(
        "SELECT desired_config FROM devices WHERE id = 'kiosk-w17'").fetchone()[0]
    assert json.loads(config)["desk"] == "Quầy 7"
    kiosk.tap(layout.face_center(1, 4))  # still rates
    wait_for(lambda: ratings(controller))
