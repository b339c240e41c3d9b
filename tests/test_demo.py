"""`make demo` as a new user sees it: devices online and ratings arriving through the API,
which is HTTPS with the demo's own CA, as in a commune."""

from __future__ import annotations

import json
import pathlib
import signal
import ssl
import subprocess
import sys
import urllib.request

from conftest import wait_for
from wire.messages import format_ts, utc_now

ROOT = pathlib.Path(__file__).resolve().parent.parent


def demo_api(demo_dir):
    """Wait for the demo's API URL and token files; return an authenticated GET that
    trusts only the demo's CA."""
    wait_for(lambda: (demo_dir / "admin-token").exists() and (demo_dir / "api-url").exists()
             and (demo_dir / "api-url").read_text().strip(), timeout=30)
    url = (demo_dir / "api-url").read_text().strip()
    token = (demo_dir / "admin-token").read_text().strip()
    assert url.startswith("https://"), url
    trust = ssl.create_default_context(cafile=str(demo_dir / "tls" / "ca.crt"))

    def get(path, method="GET", body=None):
        request = urllib.request.Request(
            url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5, context=trust) as response:
            return json.load(response)

    return get


def test_demo_runs_devices_online_ratings_arrive_and_stops_cleanly(tmp_path):
    demo_dir = tmp_path / "demo"
    started = format_ts(utc_now())
    proc = subprocess.Popen([sys.executable, "-m", "sim.demo", "--dir", str(demo_dir),
                             "--kiosks", "2", "--no-window"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        get = demo_api(demo_dir)

        wait_for(lambda: sum(d["online"] for d in get("/api/v1/devices")
                             if d["role"] == "kiosk") == 2, timeout=30)
        # Nine months of history are seeded; live ratings arrive on top of them.
        assert len(get("/api/v1/ratings?until=" + started)) == 1000  # a page: the limit
        wait_for(lambda: len(get("/api/v1/ratings?since=" + started)) >= 2, timeout=60)
        # The console: the printed admin signs in with the password written for them.
        import requests
        name, password = (demo_dir / "admin-password").read_text().split()
        url = (demo_dir / "api-url").read_text().strip()
        signed = requests.post(url + "/signin", data={"name": name, "password": password},
                               allow_redirects=False, verify=demo_dir / "tls" / "ca.crt",
                               timeout=10)
        assert signed.status_code == 303, signed.text[:300]
        signed = requests.get(url + "/", cookies=signed.cookies, timeout=10,
                              verify=demo_dir / "tls" / "ca.crt")
        assert signed.status_code == 200 and "Tổng quan" in signed.text, signed.text[:300]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "demo stopped." in output
    assert "admin token:" in output
    assert f"sign in as {name} / {password}" in output
    assert f"curl --cacert {demo_dir / 'tls' / 'ca.crt'} " in output


def test_demo_speakers_play_the_bulletin_in_exactly_two_hamlets(tmp_path):
    demo_dir = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "sim.demo", "--dir", str(demo_dir),
                             "--kiosks", "0", "--speakers", "3", "--bulletin-in", "6",
                             "--no-window"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        get = demo_api(demo_dir)

        def played():
            items = [b for b in get("/api/v1/broadcasts") if b["title"] == "Bản tin thử"]
            if not items:
                return None
            rows = [s for occ in get(f"/api/v1/broadcasts/{items[0]['id']}/receipts")
                    for s in occ["speakers"]]
            return rows if rows and all(s["status"] == "played" for s in rows) else None

        rows = wait_for(played, timeout=60)
        assert sorted(s["hamlet"] for s in rows) == ["an-binh", "binh-loc"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output


def test_demo_cameras_record_and_a_dissatisfied_rating_holds_their_footage(tmp_path):
    demo_dir = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "sim.demo", "--dir", str(demo_dir),
                             "--kiosks", "2", "--speakers", "0", "--no-window"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        get = demo_api(demo_dir)
        desks = wait_for(lambda: (d := {d["id"]: d for d in get("/api/v1/desks")}) and all(
            desk["cameras"] for desk in d.values()) and d, timeout=30)

        def recording():
            cameras = [d for d in get("/api/v1/devices") if d["role"] == "camera"]
            return len(cameras) == len(desks) and all(
                c["online"] and (c["telemetry"] or {}).get("camera", {}).get("recording")
                for c in cameras)

        wait_for(recording, timeout=60)
        # The simulated citizens rate all day; the dissatisfied ones hold their desk's
        # footage. Hurry them (every 2-4 s, below the pace that flags ballot stuffing).
        for desk in desks.values():
            get(f"/api/v1/devices/{desk['kiosk']}/config", "PATCH",
                {"config": {"rating_gap_s": [2, 4]}})
        hold = wait_for(lambda: next((h for h in get("/api/v1/camera/holds")
                                      if h["rating_id"]), None), timeout=120)
        assert hold["camera"] in desks[hold["desk"]]["cameras"]
        assert hold["end"] - hold["start"] == 660  # 10 minutes before the rating, 1 after
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
