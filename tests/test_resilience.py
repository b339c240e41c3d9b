"""Longer faults: the controller process killed, three days of backlog, TLS to the broker."""

from __future__ import annotations

import pathlib
import sqlite3
import subprocess
import sys
import threading
import time

from conftest import CONTROLLER_PASSWORD, DEVICE_PASSWORD, wait_for
from controller.broker import BrokerConfig, Mosquitto, free_port
from controller.db.writer import open_writer
from controller.fleet.registry import Registry
from node_runtime.config import MqttSettings, NodeConfig
from node_runtime.node import Node

ROOT = pathlib.Path(__file__).resolve().parent.parent


def register(data: pathlib.Path, device_id: str) -> None:
    with open_writer(data / "controller.db") as writer:
        Registry(writer).add(device_id, "kiosk")


def controller_process(data: pathlib.Path, port: int, tmp_path: pathlib.Path):
    secret = tmp_path / "controller-password"
    secret.write_text(CONTROLLER_PASSWORD)
    return subprocess.Popen([sys.executable, "-m", "controller.cli", "--log-level", "WARNING",
                             "--data", str(data), "serve", "--mqtt-port", str(port),
                             "--mqtt-password-file", str(secret), "--http-port", "0"], cwd=ROOT)


def stored(data: pathlib.Path, device_id: str) -> tuple[int, int]:
    with sqlite3.connect(data / "controller.db") as conn:
        return conn.execute("SELECT count(*), count(DISTINCT id) FROM events WHERE device = ?",
                            (device_id,)).fetchone()


def test_controller_killed_mid_stream_loses_and_duplicates_nothing(tmp_path, broker, make_node):
    data = tmp_path / "ctl"
    register(data, "kiosk-50")
    proc = controller_process(data, broker.port, tmp_path)
    node = make_node("kiosk-50", resend_after=1.0)
    total = 400
    producer = threading.Thread(target=lambda: [
        (node.emit("rating", {"level": 3, "scale": 4}), time.sleep(0.003)) for _ in range(total)])
    producer.start()
    try:
        wait_for(lambda: stored(data, "kiosk-50")[0] > 50, timeout=30)
        proc.kill()  # SIGKILL: no clean shutdown, a batch may be half written
        proc.wait()
        time.sleep(0.5)
        proc = controller_process(data, broker.port, tmp_path)
        producer.join()
        wait_for(lambda: node.outbox.depth == 0, timeout=60)
        assert stored(data, "kiosk-50") == (total, total)
    finally:
        proc.kill()
        proc.wait()


def test_a_weeks_backlog_is_delivered_completely_within_the_rate_limit(controller, make_node):
    """A week offline at a busy desk: ratings and their details, about 1,500 events, all
    within the default burst: nothing waits."""
    node = make_node("kiosk-50", controller=controller, start=False)
    node.outbox.put_many(("rating", {"level": 1 + i % 4, "scale": 4}) for i in range(1_500))
    node.start()
    wait_for(lambda: node.outbox.depth == 0, timeout=60)
    assert controller.health()["counts"].get("events_delayed", 0) == 0


def test_huge_backlog_is_delivered_completely(make_controller, make_node):
    """30,000 events from one node: far beyond any kiosk's backlog, a test of the pipeline
    (outbox, broker, ingestion) rather than of the per-device rate, which is lifted."""
    controller = make_controller(device_rate=1e6, device_burst=1e6)
    node = make_node("kiosk-51", controller=controller, start=False)
    node.outbox.put_many(("rating", {"level": 1 + i % 4, "scale": 4}) for i in range(30_000))
    node.start()
    wait_for(lambda: node.outbox.depth == 0, timeout=120)
    count = controller.reader().execute(
        "SELECT count(*), min(seq), max(seq) FROM events WHERE device = 'kiosk-51'").fetchone()
    assert count == (30_000, 1, 30_000)


def make_certificates(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run = lambda *args: subprocess.run(["openssl", *args], check=True,  # noqa: E731
                                       capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
        str(ca_crt), "-days", "2", "-subj", "/CN=thanthien test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


def test_node_delivers_over_tls(tmp_path, make_controller, broker):
    ca, crt, key = make_certificates(tmp_path)
    config = BrokerConfig(tmp_path / "tls-broker", port=free_port(), tls_cert=str(crt),
                          tls_key=str(key))
    config.set_user("kiosk-52", DEVICE_PASSWORD)
    tls_broker = Mosquitto(config)
    tls_broker.start()
    try:
        # The controller on the plain test broker can't see this one; check at the broker.
        node = Node(NodeConfig(
            device_id="kiosk-52", role="kiosk", data_dir=tmp_path / "n52",
            mqtt=MqttSettings(port=config.port, password=DEVICE_PASSWORD, tls_ca=str(ca),
                              reconnect_min=0.1, reconnect_max=1.0),
            clock_check="always"))
        node.start()
        try:
            wait_for(lambda: node.online, timeout=15)
        finally:
            node.close()
        # And without the CA the connection is refused: TLS really is in force.
        untrusted = Node(NodeConfig(
            device_id="kiosk-52", role="kiosk", data_dir=tmp_path / "n52b",
            mqtt=MqttSettings(port=config.port, password=DEVICE_PASSWORD,
                              tls_ca=str(tmp_path / "server.crt"),
                              reconnect_min=0.1, reconnect_max=1.0),
            clock_check="always"))
        untrusted.start()
        time.sleep(1.5)
        assert not untrusted.online
        untrusted.close()
    finally:
        tls_broker.stop()
