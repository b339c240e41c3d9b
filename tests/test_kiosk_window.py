"""The real Kivy kiosk in a real window under Xvfb, tapped through the X server."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator

import pytest
from conftest import wait_for
from kiosk_window import KioskProcess, Xvfb

from controller.service import Controller
from kiosk import layout


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
