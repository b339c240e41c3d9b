"""The console with a year of data: every page rendered server-side in <= 100 ms p95 and
<= 300 KB.

A controller process (through the rig) over a database holding a year of a
commune: 200,000 ratings stored through the rating store (so desks,
officers and cases are real), 50,000 playback receipts and 100 devices. An
admin signs in and asks for every page of the menu (found in the menu itself,
so new pages are measured as they are added); the baseline is the health
route's p95, over the same connection, in the same run.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import requests

from bench.rig import Rig
from controller.access import users
from controller.db.writer import open_writer
from controller.fleet.registry import Registry
from sim import history

PASSWORD = "bench-console-password"
SAMPLES = 40


def _seed(rig: Rig, ratings: int, receipts: int) -> None:
    kiosks = [d for d, role in rig.devices if role == "kiosk"]
    speakers = [d for d, role in rig.devices if role == "speaker"]
    with open_writer(rig.dir / "controller" / "controller.db") as writer:
        registry = Registry(writer)
        for device_id, role in rig.devices:
            registry.add(device_id, role)
        per_day = max(1, ratings // (len(kiosks) * 261))  # working days in a year
        writer.call(lambda db: history.seed(db, kiosks, days=365, per_day=per_day))
        writer.call(lambda db: users.add_user(db, "bench-admin", "admin", PASSWORD))

        def receipts_task(db: Any) -> None:
            db.conn.executemany(
                "INSERT INTO playback_receipts (device, occurrence, broadcast_id, status,"
                " scheduled, event_id, data) VALUES (?, ?, NULL, ?, ?, ?, '{}')",
                ((speakers[i % len(speakers)], f"{i // len(speakers)}@bench", "played"
                  if i % 10 else "missed", f"2026-01-01T06:{i % 60:02d}:00.000Z", f"e{i}")
                 for i in range(receipts)))
        writer.call(receipts_task)


def _p95(http: requests.Session, url: str) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        resp = http.get(url, timeout=30)
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:200])
        size = len(resp.content)
    return statistics.quantiles(times, n=20)[18], size


def measure(quick: bool) -> dict[str, Any]:
    ratings, receipts = (20_000, 5_000) if quick else (200_000, 50_000)
    devices = ([(f"kiosk-{i:02d}", "kiosk") for i in range(1, 21)]
               + [(f"loa-{i:02d}", "speaker") for i in range(1, 81)])
    with Rig(devices) as rig:
        rig.start(controller=False)
        t0 = time.monotonic()
        _seed(rig, ratings, receipts)
        seeded = time.monotonic() - t0
        rig.start_controller()
        http = requests.Session()
        signed = http.post(rig.api_url + "/signin", timeout=30, allow_redirects=False,
                           data={"name": "bench-admin", "password": PASSWORD})
        assert signed.status_code == 303, signed.text[:200]
        menu = http.get(rig.api_url + "/", timeout=30).text.split('<nav class="menu"', 1)[1]
        paths = re.findall(r'href="(/[^"]*)"', menu.split("</nav>", 1)[0])
        pages = {path: _p95(http, rig.api_url + path) for path in paths}
        baseline = _p95(http, rig.api_url + "/api/v1/health")[0]
    return {"pages": pages, "baseline": baseline, "seeded_s": seeded, "ratings": ratings}


def run(quick: bool = False) -> list[tuple[str, float, str, str, str]]:
    got = measure(quick)
    slowest = max(got["pages"].items(), key=lambda kv: kv[1][0])
    heaviest = max(got["pages"].items(), key=lambda kv: kv[1][1])
    data = f"{got['ratings']:,} ratings, receipts, 100 devices"
    return [
        ("console_page_p95_worst", round(slowest[1][0], 1), "ms", "<= 100",
         f"slowest of {len(got['pages'])} pages ({slowest[0]}), {SAMPLES} requests each; {data}"),
        ("console_page_p95_vs_health", round(slowest[1][0] / got["baseline"], 2), "ratio", "-",
         "slowest page p95 / GET /api/v1/health p95, same connection, same run"),
        ("console_page_kb_worst", round(heaviest[1][1] / 1024, 1), "KB", "<= 300",
         f"heaviest page ({heaviest[0]}), HTML only"),
    ]
