"""Putting devices into service through the real broker and controller: a card imported
(even much later), enrolment by claim with approval, an expired token refused, and a
replacement that locks the old hardware's password out at the broker."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import wait_for
from controller.access.tokens import create_token
from controller.cli import main as controller_main
from node_runtime import enrol as node_enrol
from node_runtime.config import NodeConfig, load_config
from node_runtime.node import Node
from provisioning.card import DeviceCard
from provisioning.identity import new_identity


@pytest.fixture
def api(controller):
    token = controller.writer.call(lambda db: create_token(db, "kythuat"))

    def call(method, path, **kw):
        return requests.request(method, controller.api_url + path, timeout=10,
                                headers={"Authorization": f"Bearer {token}"}, **kw)
    return call


def device_site(tmp_path: pathlib.Path) -> pathlib.Path:
    """The controller's site settings for devices' cards, and a speaker's wheelhouse for
    Trixie beside them (this machine's wheels under a Pi's name: nothing is installed)."""
    import shutil

    from test_provisioning import HOST_WHEELS
    cache = tmp_path / "wheels"
    shutil.copytree(HOST_WHEELS, cache / "speaker-aarch64-py313")
    site = tmp_path / "site.toml"
    site.write_text(f'mqtt_host = "xa-tan-an.local"\nmqtt_port = 8883\n'
                    f'controller_url = "https://xa-tan-an.local:8443"\n'
                    f'wheels_cache = "{cache}"\nwifi_ssid = "UBND"\n')
    return site


def _publish(broker, user, password) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", user, "-P", password,
                           "-t", f"tt/v1/dev/{user}/telemetry", "-m", "{}"],
                          capture_output=True, text=True, timeout=10)


def _card(device_id, role="speaker", **kw):
    identity = new_identity(device_id, role)
    return identity, DeviceCard(device_id, role, identity.password_hash, **kw)


def test_claim_pending_approved_then_the_node_connects(tmp_path, broker, controller, api,
                                                       monkeypatch):
    monkeypatch.setattr(node_enrol, "POLL_S", (0.1, 0.3))
    made = api("POST", "/api/v1/enrolments", json={
        "device_id": "loa-an-binh-1", "role": "speaker", "hamlet": "Ấp An Bình"}).json()
    assert made["token"].startswith("te_")
    assert made["token"] not in str(controller.reader().execute(
        "SELECT * FROM enrolments").fetchall())
    node_file = tmp_path / "node.toml"
    node_file.write_text(
        f'[device]\nid = "loa-an-binh-1"\nrole = "speaker"\ndata_dir = "{tmp_path / "n"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive = 5\n'
        f'[enrol]\ntoken = "{made["token"]}"\ncontroller_url = "{controller.api_url}"\n')
    board = tmp_path / "board"
    (board / "proc/device-tree").mkdir(parents=True)
    (board / "proc/device-tree/model").write_text("Raspberry Pi 4 Model B Rev 1.5\0")
    (board / "proc/cpuinfo").write_text("processor\t: 0\nSerial\t\t: 10000000a1b2c3d4\n")
    done: list[bool] = []
    stop = threading.Event()
    claimer = threading.Thread(target=lambda: done.append(node_enrol.enrol_if_needed(
        node_file, stop=stop, root=board)))
    claimer.start()
    try:
        pending = wait_for(lambda: api("GET", "/api/v1/devices?status=pending").json())
        assert pending[0]["id"] == "loa-an-binh-1" and pending[0]["serial"] == "10000000a1b2c3d4"
        listed = api("GET", "/api/v1/enrolments").json()
        assert listed[0]["status"] == "claimed" and listed[0]["model"].startswith("Raspberry")
        password = load_config(node_file).mqtt.password
        assert password and _publish(broker, "loa-an-binh-1", password).returncode != 0
        assert api("POST", "/api/v1/devices/loa-an-binh-1/approve").status_code == 200
        claimer.join(10)
    finally:
        stop.set()
    assert done == [True]
    text = node_file.read_text()
    assert "[enrol]" not in text and made["token"] not in text
    config = load_config(node_file)
    assert config.mqtt.password == password  # made on the device; only its hash travelled
    device = api("GET", "/api/v1/devices/loa-an-binh-1").json()
    assert (device["status"], device["hamlet"], device["serial"]) == (
        "approved", "Ấp An Bình", "10000000a1b2c3d4")
    with Node(config) as node:
        node.start()
        wait_for(lambda: api("GET", "/api/v1/devices/loa-an-binh-1").json()["online"])
    # The token served once: other hardware with it is refused, naming the first.
    refused = requests.post(controller.api_url + "/api/v1/enrol", timeout=10, json={
        "token": made["token"], "serial": "deadbeef", "password_hash": "$7$101$AA==$AA=="})
    assert refused.status_code == 403 and "already used by hardware 10000000a1b2c3d4" in \
        refused.json()["error"]


def test_an_expired_or_unknown_token_is_refused_and_the_node_says_why(tmp_path, controller,
                                                                      api):
    made = api("POST", "/api/v1/enrolments", json={
        "device_id": "loa-an-binh-2", "role": "speaker", "ttl_h": 0.02}).json()
    controller.writer.call(lambda db: db.execute("UPDATE enrolments SET expires = ?",
                                                 (time.time() - 1,)))
    node_file = tmp_path / "node.toml"
    node_file.write_text(
        f'[device]\nid = "loa-an-binh-2"\nrole = "speaker"\n[mqtt]\nport = 1\n'
        f'[enrol]\ntoken = "{made["token"]}"\ncontroller_url = "{controller.api_url}"\n')
    board = tmp_path / "board"
    (board / "etc").mkdir(parents=True)
    (board / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    with pytest.raises(node_enrol.EnrolmentRefused, match="expired at"):
        node_enrol.enrol_if_needed(node_file, root=board)
    assert api("GET", "/api/v1/devices?status=pending").json() == []
    unknown = requests.post(controller.api_url + "/api/v1/enrol", timeout=10, json={
        "token": "te_nothing", "serial": "abcd1234", "password_hash": "$7$101$AA==$AA=="})
    assert unknown.status_code == 403 and unknown.json()["error"] == "unknown enrolment token"
    bad = requests.post(controller.api_url + "/api/v1/enrol", timeout=10, json={
        "token": made["token"], "serial": "a b", "password_hash": "x"})
    assert bad.status_code == 400 and "serial" in bad.json()["error"]


def test_card_imported_later_then_replaced_locks_the_old_password_out(broker, controller, api):
    old, card = _card("loa-an-binh-3", hamlet="Ấp An Bình")
    imported = api("POST", "/api/v1/devices/import", json=json.loads(card.to_json()))
    assert imported.status_code == 201, imported.text
    assert imported.json()["replaced"] is False and imported.json()["broker_reloaded"] is True
    wait_for(lambda: _publish(broker, "loa-an-binh-3", old.password).returncode == 0)
    # A card for a known id is refused unless a replacement is asked for.
    new, card2 = _card("loa-an-binh-3")
    again = api("POST", "/api/v1/devices/import", json=json.loads(card2.to_json()))
    assert again.status_code == 400 and "already registered" in again.json()["error"]
    replaced = api("POST", "/api/v1/devices/import?replace=true", json=json.loads(
        card2.to_json())).json()
    assert replaced["replaced"] is True
    wait_for(lambda: _publish(broker, "loa-an-binh-3", old.password).returncode != 0)
    assert _publish(broker, "loa-an-binh-3", new.password).returncode == 0
    device = api("GET", "/api/v1/devices/loa-an-binh-3").json()
    assert device["hamlet"] == "Ấp An Bình" and device["status"] == "approved"
    wrong_role = api("POST", "/api/v1/devices/import?replace=true",
                     json=json.loads(_card("loa-an-binh-3", "kiosk")[1].to_json()))
    assert wrong_role.status_code == 400 and "is a speaker" in wrong_role.json()["error"]
    bad = api("POST", "/api/v1/devices/import", json={"format": "thanthien-card/1",
                                                      "device_id": "x-1", "role": "speaker",
                                                      "password_hash": "plain"})
    assert bad.status_code == 400 and "password_hash" in bad.json()["error"]


def test_cli_imports_cards_and_replacement_closes_the_old_connection(tmp_path, broker,
                                                                     make_controller):
    old, card = _card("cam-quay-1", "camera", desk="quay-1", camera_key="ab" * 32)
    path = tmp_path / "cam-quay-1.card.json"
    path.write_text(card.to_json())
    data = tmp_path / "controller"
    assert controller_main(["--data", str(data), "device", "import", str(path),
                            "--broker-dir", str(broker.config.directory)]) == 0
    ctl = make_controller()
    row = ctl.reader().execute("SELECT desk FROM desk_cameras WHERE camera = 'cam-quay-1'"
                               ).fetchone()
    assert row == ("quay-1",)
    assert ctl.reader().execute("SELECT public_key FROM camera_keys WHERE pinned = 1"
                                ).fetchone() == ("ab" * 32,)
    broker.process.reload()
    settings = broker.device_settings("cam-quay-1")
    config = NodeConfig("cam-quay-1", "camera", tmp_path / "n", clock_check="always", status_port=0,
                        mqtt=dataclasses.replace(settings, password=old.password))
    with Node(config) as node:
        node.start()
        wait_for(node.session.is_connected.is_set)
        new, card2 = _card("cam-quay-1", "camera", camera_key="cd" * 32)
        path.write_text(card2.to_json())
        with pytest.raises(SystemExit):
            controller_main(["--data", str(data), "device", "import", str(path),
                             "--broker-dir", str(broker.config.directory)])
        assert controller_main(["--data", str(data), "device", "import", str(path),
                                "--replace", "--broker-dir",
                                str(broker.config.directory)]) == 0
        broker.process.reload()
        # Within seconds the old hardware is off the broker and stays off.
        wait_for(lambda: not node.session.is_connected.is_set(), timeout=10)
        time.sleep(1.5)
        assert not node.session.is_connected.is_set()
    assert ctl.reader().execute("SELECT public_key FROM camera_keys WHERE pinned = 1"
                                ).fetchone() == ("cd" * 32,)


def test_the_console_makes_a_bundle_and_imports_its_card(tmp_path, broker, make_controller):
    """One device at a time from the console: the controller writes the bundle from its
    site settings for devices and the wheelhouse prepared beside it, imports the card."""
    import io
    import zipfile

    ctl = make_controller(device_site=device_site(tmp_path))
    token = ctl.writer.call(lambda db: create_token(db, "kythuat"))
    headers = {"Authorization": f"Bearer {token}"}
    answer = requests.post(ctl.api_url + "/api/v1/devices/bundle", headers=headers, timeout=60,
                           json={"device_id": "loa-cay-gao-2", "role": "speaker",
                                 "hamlet": "Ấp Cây Gáo", "wifi_key": "mat-khau-wifi-2026"})
    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    assert {"boot/user-data", "boot/network-config", "boot/thanthien/node.toml",
            "boot/thanthien/firstboot.sh", "loa-cay-gao-2-label.pdf"} <= set(names)
    assert any(n.startswith("boot/thanthien/wheels/thanthien-") for n in names)
    device = requests.get(ctl.api_url + "/api/v1/devices/loa-cay-gao-2", headers=headers,
                          timeout=10).json()
    assert (device["status"], device["hamlet"]) == ("approved", "Ấp Cây Gáo")
    assert not list(pathlib.Path(tempfile.gettempdir()).glob("thanthien-bundle-*"))
    again = requests.post(ctl.api_url + "/api/v1/devices/bundle", headers=headers, timeout=60,
                          json={"device_id": "loa-cay-gao-2", "role": "speaker",
                                "wifi_key": "mat-khau-wifi-2026"})
    assert again.status_code == 400 and "already registered" in again.json()["error"]
    bad = requests.post(ctl.api_url + "/api/v1/devices/bundle", headers=headers, timeout=60,
                        json={"device_id": "cam-1", "role": "camera",
                              "wifi_key": "mat-khau-wifi-2026"})
    assert bad.status_code == 400 and "not a prepared wheelhouse" in bad.json()["error"]
