"""``/api/v1/health`` tells the truth: degraded, with the reason, when writes fail, the
broker is gone or the database was found corrupt; ok again once that is over.

Regression: health said ``ok`` while every write failed.
"""

from __future__ import annotations

import requests

from conftest import wait_for
from controller.service import Controller


def health(ctl: Controller) -> tuple[int, dict]:
    resp = requests.get(ctl.api_url + "/api/v1/health", timeout=5)
    return resp.status_code, resp.json()


def test_health_degraded_while_the_disk_is_full_and_no_rating_is_lost(controller, make_node):
    node = make_node("kiosk-h1", controller=controller)
    wait_for(lambda: node.online)
    assert health(controller)[0] == 200
    pages = controller.writer.call(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
    # SQLite answers SQLITE_FULL exactly as when the disk is full: no new page can be had.
    controller.writer.call(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))
    for n in range(300):
        node.emit("rating", {"level": 1 + n % 4, "scale": 4})
    status, body = wait_for(lambda: (h := health(controller))[1]["status"] == "degraded" and h)
    assert status == 503
    assert any("writes failing" in r and "full" in r for r in body["reasons"]), body
    assert node.outbox.depth > 0  # not acked, so kept on the kiosk
    controller.writer.call(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
    node.emit("rating", {"level": 4, "scale": 4})  # the next write succeeds
    wait_for(lambda: node.outbox.depth == 0, timeout=30)
    wait_for(lambda: health(controller)[1]["status"] == "ok")
    stored = controller.reader().execute("SELECT count(*) FROM ratings").fetchone()[0]
    assert stored == 301


def test_health_degraded_while_the_broker_is_down(controller, broker):
    assert health(controller)[1]["status"] == "ok"
    broker.process.stop()
    status, body = wait_for(lambda: (h := health(controller))[1]["status"] == "degraded" and h)
    assert status == 503 and body["mqtt_connected"] is False
    assert "not connected to the MQTT broker" in body["reasons"]
    broker.process.start()
    wait_for(lambda: health(controller)[1]["status"] == "ok", timeout=20)


def test_corrupt_database_is_set_aside_and_reported_not_crash_looped(tmp_path, broker):
    db = tmp_path / "controller" / "controller.db"
    db.parent.mkdir()
    db.write_bytes(b"SQLite format 3\x00" + b"\x07" * 8192)  # a header, then garbage
    with Controller(db, broker.controller_settings(), http_port=0) as ctl:
        ctl.start()
        wait_for(ctl.hub.session.is_connected.is_set)
        status, body = health(ctl)
        assert status == 503 and body["status"] == "degraded"
        (reason,) = body["reasons"]
        assert "corrupt" in reason and str(ctl.set_aside) in reason
        assert ctl.set_aside.read_bytes().startswith(b"SQLite format 3")
        assert ctl.reader().execute("SELECT count(*) FROM devices").fetchone() == (0,)


def test_controller_on_a_busy_port_fails_with_a_clear_error_and_leaks_nothing(tmp_path, broker):
    import os
    import socket

    from controller.errors import ControllerError
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        files = len(os.listdir("/proc/self/fd"))
        for _ in range(3):
            try:
                Controller(tmp_path / "c.db", broker.controller_settings(), http_port=port)
            except ControllerError as exc:
                assert f"127.0.0.1:{port}" in str(exc)
            else:
                raise AssertionError("a second server on a busy port")
        assert len(os.listdir("/proc/self/fd")) - files <= 1
