"""A broker that trusts no device, over the real Mosquitto and the real controller:
client ids are usernames, revocation closes a device's connection at once, each
device's message rate is bounded without losing its events."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from conftest import DEVICE_PASSWORD, wait_for
from controller.access.tokens import create_token
from controller.fleet.hub import CLIENT_ID
from controller.fleet.registry import get_device
from controller.service import Controller
from wire.topics import CONTROLLER_ACCOUNT


def stored(controller, device_id: str) -> int:
    return controller.reader().execute(
        "SELECT count(*) FROM events WHERE device = ?", (device_id,)).fetchone()[0]


def connect_as(broker, username: str, client_id: str) -> tuple[mqtt.Client, list]:
    """A paho client with ``username``'s credentials asking for ``client_id``; returns it
    with the list of CONNACK codes it got."""
    codes: list = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(username, DEVICE_PASSWORD)
    client.on_connect = lambda _c, _u, _f, code, _p: codes.append(code)
    client.connect("127.0.0.1", broker.port, keepalive=5)
    client.loop_start()
    return client, codes


class Watch:
    """Samples ``is_connected`` every 10 ms; ``dropped`` if it was ever clear."""

    def __init__(self, event: threading.Event):
        self.dropped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(event,), daemon=True)
        self._thread.start()

    def _run(self, event: threading.Event) -> None:
        while not self._stop.wait(0.01):
            self.dropped |= not event.is_set()

    def stop(self) -> bool:
        self._stop.set()
        self._thread.join()
        return self.dropped


def test_kiosk_credentials_cannot_take_the_controllers_or_another_devices_client_id(
        controller, make_node, broker):
    other = make_node("kiosk-t2", controller=controller)
    wait_for(lambda: other.online)
    broker.add_device("kiosk-t1")
    watch_controller = Watch(controller.hub.session.is_connected)
    watch_other = Watch(other.session.is_connected)
    clients = []
    for client_id in (CLIENT_ID, CONTROLLER_ACCOUNT, "kiosk-t2", "thanthien-controller"):
        client, codes = connect_as(broker, "kiosk-t1", client_id)
        clients.append(client)
        wait_for(lambda codes=codes: codes)  # let in, under its own id
    time.sleep(0.5)  # a takeover closes the older connection at once
    assert not watch_controller.stop(), "the controller's connection was closed"
    assert not watch_other.stop(), "kiosk-t2's connection was closed"
    log = (broker.config.directory / "mosquitto.log").read_text().splitlines()
    as_kiosk = [line for line in log if "New client connected" in line and "u'kiosk-t1'" in line]
    assert len(as_kiosk) == 4 and all(" as kiosk-t1 " in line for line in as_kiosk)
    # Only its own earlier connections were closed (one username, one session).
    assert {line.split("Client ")[1].split()[0] for line in log
            if "closing old connection" in line} == {"kiosk-t1"}
    other.emit("rating", {"level": 4, "scale": 4})  # still serving
    wait_for(lambda: other.outbox.depth == 0)
    for client in clients:
        client.loop_stop()
        client.disconnect()


def test_revoking_a_device_closes_its_connection_and_refuses_it(controller, make_node,
                                                                  broker):
    token = controller.writer.call(lambda db: create_token(db, "tech", "technician"))
    node = make_node("kiosk-r1", controller=controller)
    wait_for(lambda: node.online)
    node.emit("rating", {"level": 4, "scale": 4})
    wait_for(lambda: node.outbox.depth == 0)
    resp = requests.post(f"{controller.api_url}/api/v1/devices/kiosk-r1/revoke", timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": "kiosk-r1", "role": "kiosk", "status": "revoked",
                           "broker_account_removed": True, "broker_reloaded": True}
    wait_for(lambda: not node.session.is_connected.is_set(), timeout=5)
    assert "kiosk-r1" not in broker.config.users()
    node.emit("rating", {"level": 1, "scale": 4})
    time.sleep(1.0)  # it keeps trying; the broker refuses it
    assert not node.session.is_connected.is_set() and node.outbox.depth == 1
    assert stored(controller, "kiosk-r1") == 1
    with controller.reader().connection() as db:
        assert get_device(db, "kiosk-r1")["status"] == "revoked"
    again = requests.post(f"{controller.api_url}/api/v1/devices/kiosk-r1/approve", timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 400 and "revoked" in again.json()["error"]


def test_device_revoke_from_the_cli_closes_the_connection(controller, make_node, broker,
                                                         tmp_path):
    node = make_node("kiosk-r2", controller=controller)
    wait_for(lambda: node.online)
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "--data", str(tmp_path / "controller"),
         "device", "revoke", "kiosk-r2", "--broker-dir", str(broker.config.directory)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "revoked" in result.stdout and "connection was closed" in result.stdout
    wait_for(lambda: not node.session.is_connected.is_set(), timeout=5)
    unknown = subprocess.run(
        [sys.executable, "-m", "controller.cli", "--data", str(tmp_path / "controller"),
         "device", "revoke", "kiosk-none", "--broker-dir", str(broker.config.directory)],
        capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "kiosk-none" in unknown.stderr


@pytest.fixture
def slow_controller(tmp_path, broker):
    """A controller letting each device 5 messages a second, in bursts of 10."""
    ctl = Controller(tmp_path / "slow" / "controller.db", broker.controller_settings(),
                     http_port=0, device_rate=5, device_burst=10)
    ctl.start()
    wait_for(ctl.hub.session.is_connected.is_set)
    yield ctl
    ctl.close()


def test_a_flooding_device_is_delayed_not_lost_and_others_keep_flowing(slow_controller,
                                                                      make_node):
    flood = make_node("kiosk-f1", controller=slow_controller, resend_after=1.0)
    calm = make_node("kiosk-f2", controller=slow_controller)
    for _ in range(60):
        flood.emit("rating", {"level": 4, "scale": 4})
    calm.emit("rating", {"level": 1, "scale": 4})
    wait_for(lambda: stored(slow_controller, "kiosk-f2") == 1)
    assert stored(slow_controller, "kiosk-f1") < 60  # held back ...
    wait_for(lambda: flood.outbox.depth == 0, timeout=60)  # ... and every one delivered
    assert stored(slow_controller, "kiosk-f1") == 60
    assert slow_controller.health()["counts"]["events_delayed"] > 0



def test_rotating_a_devices_credentials_closes_the_old_ones_connection(controller, make_node,
                                                                      broker, tmp_path):
    """``device add`` for a known id gives it new credentials (the procedure in
    docs/security.md): the broker re-reads its accounts at once, the connection made with
    the old password is closed, the new node file connects."""
    from node_runtime.config import load_config
    from node_runtime.node import Node
    old = make_node("kiosk-r3", controller=controller)
    wait_for(lambda: old.online)
    node_file = tmp_path / "kiosk-r3.toml"
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "--data", str(tmp_path / "controller"),
         "device", "add", "kiosk-r3", "--role", "kiosk", "--broker-dir",
         str(broker.config.directory), "--mqtt-port", str(broker.port), "--node-data-dir",
         str(tmp_path / "new-kiosk-r3"), "--out", str(node_file)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "re-read its accounts" in result.stdout
    wait_for(lambda: not old.session.is_connected.is_set(), timeout=5)
    old.close()
    new = Node(load_config(node_file))
    new.start()
    try:
        new.emit("rating", {"level": 1, "scale": 4})
        wait_for(lambda: new.outbox.depth == 0, timeout=20)
    finally:
        new.close()


def test_pacer_holds_a_bounded_number_and_hands_them_on_at_the_rate():
    """Unit: with an empty bucket, a device's events are held up to its share, the rest
    deferred to the node (not acked); held ones go on as the bucket refills, in order."""
    from controller.fleet.rate_limit import Pacer, RateLimiter
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=5, clock=lambda: now[0])
    delivered, counts = [], {}
    pacer = Pacer(limiter, delivered.append,
                  lambda name, n: counts.__setitem__(name, counts.get(name, 0) + n),
                  per_device=20, total=30)
    outcomes = [pacer.offer("kiosk-p1", {"n": i}) for i in range(30)]
    assert outcomes == ["delivered"] * 5 + ["held"] * 20 + ["deferred"] * 5
    assert [pacer.offer("kiosk-p2", {"n": i}) for i in range(15)] == (
        ["delivered"] * 5 + ["held"] * 10)
    assert pacer.offer("kiosk-p3", {"n": 0}) == "delivered"
    assert pacer.offer("kiosk-p3", {"n": 1}) == "delivered"  # its own bucket is full
    assert pacer.held == 30 and counts == {"events_delayed": 30, "events_deferred": 5}
    assert pacer.offer("kiosk-p4", {"n": 0}) == "delivered"  # within its rate: never held
    now[0] = 1.0  # each bucket full again: five more each
    assert [e["n"] for e in pacer._due()] == [*range(5, 10), *range(5, 10)]
    assert pacer.held == 20
    later = []
    for second in (2.0, 3.0, 4.0):
        now[0] = second
        later += pacer._due()
    assert pacer.held == 0 and len(later) == 20  # none lost, none twice
    assert len(delivered) == 5 + 5 + 2 + 1  # handed on at once, the rest by the thread
