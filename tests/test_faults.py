"""Faults against the real broker: processes killed, bad input, unknown devices."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conftest import (
    DEVICE_PASSWORD,
    PEER_PASSWORD,
    PEER_USER,
    node_config,
    wait_for,
    write_node_file,
)
from controller.broker.config import MAX_PACKET_BYTES
from controller.fleet.registry import get_device, list_devices
from node_runtime.node import Node
from wire.messages import encode, new_event
from wire.topics import Topic, device_topic

HERE = pathlib.Path(__file__).parent


def event_count(controller, device_id: str) -> tuple[int, int]:
    """(rows, distinct seqs) stored for a device."""
    return controller.reader().execute(
        "SELECT count(*), count(DISTINCT seq) FROM events WHERE device = ?",
        (device_id,)).fetchone()


def raw_client(broker, username=PEER_USER, password=PEER_PASSWORD) -> mqtt.Client:
    """A paho client; by default the tests' peer, which may write anywhere (as the
    controller may) without taking the controller's client id."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{username}",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_broker_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
        controller, make_node, broker):
    node = make_node("kiosk-10", controller=controller, outbox_window=20, resend_after=2.0)
    total = 300
    stop = threading.Event()

    def stream() -> None:
        for _ in range(total):
            node.emit("rating", {"level": 2, "scale": 4})
            time.sleep(0.005)
        stop.set()

    producer = threading.Thread(target=stream)
    producer.start()
    wait_for(lambda: event_count(controller, "kiosk-10")[0] > 30)
    broker.process.kill()
    time.sleep(1.0)
    broker.process.start()
    producer.join()
    wait_for(lambda: node.outbox.depth == 0, timeout=30)
    assert event_count(controller, "kiosk-10") == (total, total)


def test_node_killed_right_after_accepting_delivers_after_restart(
        tmp_path, controller, make_node, broker):
    broker.add_device("kiosk-11")
    controller.registry.add("kiosk-11", "kiosk")
    config = node_config(tmp_path, broker, "kiosk-11")
    config_file = write_node_file(tmp_path, broker, "kiosk-11")
    proc = subprocess.Popen([sys.executable, str(HERE / "node_process.py"), str(config_file), "5"],
                            stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    ids = [proc.stdout.readline().strip() for _ in range(5)]
    proc.kill()  # SIGKILL the moment the fifth event is accepted
    proc.wait()
    node = Node(config)
    node.start()
    try:
        wait_for(lambda: node.outbox.depth == 0, timeout=20)
        stored = [r[0] for r in controller.reader().execute(
            "SELECT id FROM events WHERE device = 'kiosk-11' ORDER BY seq")]
        assert stored == ids
    finally:
        node.close()


def test_bad_messages_are_rejected_counted_and_controller_keeps_serving(
        controller, make_node, broker):
    node = make_node("kiosk-12", controller=controller)
    broker.add_device("stranger-01")  # has broker credentials, not in the registry
    client = raw_client(broker)
    topic = device_topic("kiosk-12", Topic.EVENTS)
    good = new_event("kiosk-12", 99, "rating", {"level": 1, "scale": 4}, clock_synced=True)
    cases = {
        "json": b"{not json",
        "schema": json.dumps({**good, "v": 99}).encode(),
        "size": b'{"v":1,"pad":"' + b"x" * 70_000 + b'"}',
        "field": json.dumps({**good, "v": 1, "seq": "one"}).encode(),
        "device_mismatch": encode(Topic.EVENTS, {**good, "device": "kiosk-99"}),
        "unknown_device": encode(Topic.EVENTS, {**good, "device": "stranger-01"}),
    }
    for reason, payload in cases.items():
        target = device_topic("stranger-01", Topic.EVENTS) if reason == "unknown_device" else topic
        client.publish(target, payload, qos=1).wait_for_publish()
    wait_for(lambda: set(cases) <= set(controller.metrics.snapshot()["rejections"]))
    assert controller.reader().execute("SELECT count(*) FROM events").fetchone() == (0,)
    node.emit("rating", {"level": 1, "scale": 4})  # still serving
    wait_for(lambda: node.outbox.depth == 0)
    client.loop_stop()
    client.disconnect()


def test_unknown_device_is_pending_and_its_events_neither_stored_nor_acked(
        controller, make_node):
    node = make_node("stranger-02")  # not registered with the controller
    node.emit("rating", {"level": 1, "scale": 4})
    wait_for(lambda: any(d["id"] == "stranger-02" for d in
                         list_devices(controller.reader(), status="pending")))
    time.sleep(1.0)
    assert node.outbox.depth == 1
    assert controller.reader().execute("SELECT count(*) FROM events").fetchone() == (0,)
    controller.registry.approve("stranger-02")  # a technician approves: now it flows
    wait_for(lambda: node.outbox.depth == 0, timeout=20)


def test_device_cannot_publish_into_another_devices_subtree(controller, make_node, broker):
    make_node("kiosk-13", controller=controller)
    victim = make_node("kiosk-14", controller=controller)
    client = raw_client(broker, "kiosk-13", DEVICE_PASSWORD)
    forged = new_event("kiosk-14", 1, "rating", {"level": 4, "scale": 4}, clock_synced=True)
    client.publish(device_topic("kiosk-14", Topic.EVENTS), encode(Topic.EVENTS, forged),
                   qos=1).wait_for_publish()
    time.sleep(1.0)
    assert event_count(controller, "kiosk-14") == (0, 0)  # the broker's ACL dropped it
    assert victim.outbox.depth == 0
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def online_node_process(tmp_path, controller, broker):
    """An approved node in its own process (keepalive 2 s), online; killed at the end."""
    procs = []

    def start(device_id: str) -> subprocess.Popen:
        broker.add_device(device_id)
        controller.registry.add(device_id, "kiosk")
        config_file = write_node_file(tmp_path, broker, device_id, keepalive=2)
        proc = subprocess.Popen([sys.executable, str(HERE / "node_process.py"),
                                 str(config_file), "0"], cwd=HERE.parent)
        procs.append(proc)
        wait_for(lambda: online(controller, device_id))
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def online(controller, device_id: str) -> bool:
    return get_device(controller.reader(), device_id)["online"]


def test_frozen_node_is_marked_offline_by_liveness(controller, online_node_process):
    """A node whose link dies silently (SIGSTOP keeps its TCP connection open)."""
    proc = online_node_process("kiosk-16")
    proc.send_signal(signal.SIGSTOP)
    wait_for(lambda: not online(controller, "kiosk-16"), timeout=15)
    proc.send_signal(signal.SIGCONT)  # it comes back: its next telemetry or birth says so
    wait_for(lambda: online(controller, "kiosk-16"), timeout=15)


def test_killed_node_is_marked_offline(controller, online_node_process):
    online_node_process("kiosk-15").kill()
    # Its connection closes, so the broker publishes the will at once; a node
    # that cannot close it is caught by liveness (above). Timings: `make bench`.
    wait_for(lambda: not online(controller, "kiosk-15"), timeout=15)


def test_oversize_packet_disconnects_its_sender_and_others_keep_rating(
        controller, make_node, broker):
    """The broker refuses a packet past twice the wire's limit (max_packet_size): the sender
    is disconnected before anything is delivered, and other devices are not disturbed."""
    make_node("kiosk-15", controller=controller)
    good = make_node("kiosk-16", controller=controller)
    client = raw_client(broker, "kiosk-15", DEVICE_PASSWORD)
    wait_for(client.is_connected)
    dropped = threading.Event()
    client.on_disconnect = lambda *args: dropped.set()
    client.publish(device_topic("kiosk-15", Topic.EVENTS), b"x" * (MAX_PACKET_BYTES + 10),
                   qos=1)
    assert dropped.wait(10)
    good.emit("rating", {"level": 1, "scale": 4})
    wait_for(lambda: good.outbox.depth == 0)
    assert event_count(controller, "kiosk-16") == (1, 1)
    assert event_count(controller, "kiosk-15") == (0, 0)
    client.loop_stop()
