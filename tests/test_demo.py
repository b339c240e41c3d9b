"""`make demo` as a new user sees it: devices online and ratings arriving through the API,
which is HTTPS with the demo's own CA, as in a commune."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import urllib.request

from conftest import wait_for
from node_runtime.config import load_config
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


def test_a_speaker_provisioned_as_the_docs_say_joins_the_demo_plays_and_is_replaced(tmp_path):
    """docs/provisioning.md's walk-through on the demo: a bundle for a speaker in a named
    hamlet passes cloud-init's check; its first boot (against a fake root) installs and
    enables the node, nothing secret left on the boot folder; the card imported, the node
    it installed comes online, plays its hamlet's bulletin; a replacement locks the old
    password out."""
    demo_dir = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "sim.demo", "--dir", str(demo_dir),
                             "--kiosks", "0", "--speakers", "3", "--no-cameras",
                             "--no-window"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    bin_ = pathlib.Path(sys.executable).parent
    node = None
    try:
        get = demo_api(demo_dir)
        wait_for(lambda: (demo_dir / "mqtt-port").exists(), timeout=30)
        port = (demo_dir / "mqtt-port").read_text().strip()
        url = (demo_dir / "api-url").read_text().strip()
        card_dir, root = tmp_path / "loa-an-binh-2", tmp_path / "root"

        def bundle() -> pathlib.Path:
            subprocess.run([bin_ / "thanthien-provision", "bundle", "loa-an-binh-2", "--role",
                            "speaker", "--hamlet", "an-binh", "--mqtt-host", "127.0.0.1",
                            "--mqtt-port", port, "--mqtt-plain", "--controller-url", url,
                            "--ca", str(demo_dir / "tls" / "ca.crt"), "--host-wheels",
                            "--wheels-cache", str(ROOT / ".cache" / "wheelhouse"), "--out",
                            str(card_dir)], check=True, capture_output=True, text=True)
            imported = subprocess.run(
                [bin_ / "thanthien-controller", "--data", str(demo_dir / "controller"), "device",
                 "import", str(card_dir / "loa-an-binh-2.card.json"), "--broker-dir",
                 str(demo_dir / "broker"), "--replace"], check=True, capture_output=True,
                text=True)
            assert "the broker has re-read its accounts" in imported.stdout, imported.stdout
            return card_dir / "boot"

        boot = bundle()
        assert subprocess.run(["cloud-init", "schema", "--config-file", str(boot / "user-data")],
                              capture_output=True).returncode == 0
        first = subprocess.run(["sh", str(boot / "thanthien" / "firstboot.sh")], env={
            **os.environ, "THANTHIEN_ROOT": str(root), "THANTHIEN_BOOT": str(boot),
            "THANTHIEN_PYTHON": "/usr/bin/python3", "THANTHIEN_APT_GET": "true"},
            capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, (root / "var/log/thanthien-firstboot.log").read_text()
        assert (root / "etc/systemd/system/multi-user.target.wants/"
                "thanthien-node@speaker.service").is_symlink()
        node_file = root / "etc/thanthien/node.toml"
        old_password = load_config(node_file).mqtt.password
        assert not (boot / "thanthien" / "node.toml").exists()
        assert not any(old_password.encode() in p.read_bytes() for p in boot.rglob("*")
                       if p.is_file())
        # Here the fake root is not /: point the file's paths into it, trust this clock.
        text = node_file.read_text().replace("/etc/thanthien/", f"{root}/etc/thanthien/")
        node_file.write_text(text.replace("/var/lib/thanthien", f"{root}/var/lib/thanthien")
                             .replace("[runtime]", '[runtime]\nclock_check = "always"'))
        sound = tmp_path / "sound.raw"
        alsa = tmp_path / "asound.conf"
        alsa.write_text('</usr/share/alsa/alsa.conf>\npcm.!default { type file; slave.pcm '
                        f'"null"; file "{sound}"; format "raw"; truncate false }}\n')
        node = subprocess.Popen([root / "opt/thanthien/.venv/bin/thanthien-speaker",
                                 "--config", str(node_file)],
                                env={**os.environ, "ALSA_CONFIG_PATH": str(alsa)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(lambda: get("/api/v1/devices/loa-an-binh-2")["online"], timeout=30)
        assert get("/api/v1/devices/loa-an-binh-2")["hamlet"] == "an-binh"

        audio = get("/api/v1/audio")[0]
        local = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7, seconds=60)
        made = get("/api/v1/broadcasts", "POST", {
            "audio_id": audio["id"], "start": local.replace(tzinfo=None).isoformat(
                timespec="seconds"), "targets": {"hamlets": ["an-binh"]},
            "title": "Bản tin ấp An Bình"})

        def played():
            rows = [s for occ in get(f"/api/v1/broadcasts/{made['id']}/receipts")
                    for s in occ["speakers"] if s["device"] == "loa-an-binh-2"]
            return rows if rows and rows[0]["status"] == "played" else None
        wait_for(played, timeout=150)
        assert sound.stat().st_size > 48_000  # a second of 48 kHz sound, at least

        bundle()  # new hardware for the same id
        refused = subprocess.run(["mosquitto_pub", "-p", port, "-u", "loa-an-binh-2", "-P",
                                  old_password, "-t", "tt/v1/dev/loa-an-binh-2/x", "-m", "{}"],
                                 capture_output=True, timeout=10)
        assert refused.returncode != 0
        # Its connection closed, it cannot come back: offline by the will or, at the latest,
        # the liveness sweep (1.25 x its 30 s keepalive).
        wait_for(lambda: not get("/api/v1/devices/loa-an-binh-2")["online"], timeout=60)
        device = get("/api/v1/devices/loa-an-binh-2")
        assert (device["status"], device["hamlet"]) == ("approved", "an-binh")
    finally:
        if node is not None:
            node.terminate()
            node.wait(timeout=15)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
