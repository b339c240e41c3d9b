"""The MQTT session's protocol choice: MQTT 5, or 3.1.1 when the broker refuses 5.

A proxy in front of the real Mosquitto (``broker_proxy.py``) plays a 3.1.1-only
broker: it refuses a version-5 CONNECT as such a broker does, and passes
everything else to Mosquitto.
"""

from __future__ import annotations

import dataclasses
import logging
import threading

import pytest
from broker_proxy import BrokerProxy
from test_resilience import make_certificates

from conftest import node_config, wait_for
from controller.fleet.registry import get_device
from node_runtime.node import Node

FALLBACK_LOG = "refused MQTT 5"


@pytest.fixture
def proxies(broker):
    """Make proxies in front of the test broker; closed (threads joined) after the test."""
    made: list[BrokerProxy] = []

    def make(refuse_v5: str | None = "connack", **kwargs) -> BrokerProxy:
        proxy = BrokerProxy(broker.port, refuse_v5=refuse_v5, **kwargs)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def start_node(tmp_path, broker):
    """Start a node of ``device_id`` with its MQTT settings changed by ``mqtt``."""
    made: list[Node] = []

    def start(device_id: str, *, controller=None, **mqtt) -> Node:
        broker.add_device(device_id)
        if controller is not None:
            controller.registry.add(device_id, "kiosk")
        config = node_config(tmp_path, broker, device_id)
        config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, **mqtt))
        node = Node(config)
        made.append(node)
        node.start()
        return node

    yield start
    for node in made:
        node.close()


def fallbacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if FALLBACK_LOG in r.getMessage()]


@pytest.mark.parametrize("refuse_v5", ["connack", "close"])
def test_session_falls_back_to_311_when_the_broker_refuses_5(
        controller, proxies, start_node, caplog, refuse_v5):
    proxy = proxies(refuse_v5)
    node = start_node("kiosk-70", controller=controller, port=proxy.port)
    wait_for(lambda: node.online)
    assert node.session.protocol == 4
    # A refusal by CONNACK is certain; a closed connection is believed the second time.
    assert proxy.levels == ([5, 4] if refuse_v5 == "connack" else [5, 5, 4])
    event = node.emit("rating", {"level": 2, "scale": 4})
    wait_for(lambda: node.outbox.depth == 0)
    assert controller.reader().execute(
        "SELECT id FROM events WHERE device = 'kiosk-70'").fetchall() == [(event["id"],)]
    # The birth says which protocol the node speaks, and the controller keeps it.
    wait_for(lambda: get_device(controller.reader(), "kiosk-70")["mqtt_protocol"] == 4)
    assert len(fallbacks(caplog)) == 1


def test_session_stays_on_311_after_a_reconnect(controller, proxies, start_node, broker):
    proxy = proxies()
    node = start_node("kiosk-71", controller=controller, port=proxy.port)
    wait_for(lambda: node.online)
    broker.process.stop()
    wait_for(lambda: not node.online)
    broker.process.start()
    wait_for(lambda: node.online, timeout=15)
    # Birth again on the reconnect, still 3.1.1, and the version-5 refusal not asked again.
    assert node.session.protocol == 4 and proxy.levels.count(5) == 1
    event = node.emit("rating", {"level": 3, "scale": 4})
    wait_for(lambda: node.outbox.depth == 0)
    assert controller.reader().execute(
        "SELECT count(*) FROM events WHERE id = ?", (event["id"],)).fetchone() == (1,)


def test_session_speaks_5_to_a_broker_that_does(controller, start_node, caplog):
    node = start_node("kiosk-72", controller=controller)
    wait_for(lambda: node.online)
    assert node.session.protocol == 5
    wait_for(lambda: get_device(controller.reader(), "kiosk-72")["mqtt_protocol"] == 5)
    assert fallbacks(caplog) == []


@pytest.mark.parametrize("refuse_v5", ["connack", "close"])
def test_forced_protocol_5_does_not_fall_back(proxies, start_node, caplog, refuse_v5):
    proxy = proxies(refuse_v5)
    node = start_node("kiosk-73", port=proxy.port, protocol=5)
    wait_for(lambda: len(proxy.levels) >= 4)
    assert set(proxy.levels) == {5}
    assert not node.online and node.session.protocol == 5
    assert fallbacks(caplog) == []


def test_forced_protocol_4_speaks_311_to_a_broker_that_speaks_5(proxies, start_node):
    proxy = proxies(refuse_v5=None)
    node = start_node("kiosk-74", port=proxy.port, protocol=4)
    wait_for(lambda: node.online)
    assert node.session.protocol == 4 and proxy.levels == [4]


def test_bad_password_is_not_taken_for_a_protocol_problem(proxies, start_node, caplog):
    """A wrong password refused on MQTT 5 is retried on 5, never as 3.1.1."""
    caplog.set_level(logging.WARNING, logger="node_runtime.session")
    proxy = proxies(refuse_v5=None)  # passes everything: it only counts the attempts
    node = start_node("kiosk-75", port=proxy.port, password="not-the-password")
    wait_for(lambda: len(proxy.levels) >= 4)
    assert set(proxy.levels) == {5}
    assert not node.online and node.session.protocol == 5
    assert fallbacks(caplog) == []
    refusals = [r.getMessage() for r in caplog.records if "refused connection" in r.getMessage()]
    assert refusals and all("user name or password" in m or "authorized" in m for m in refusals)


def test_fallback_keeps_tls(tmp_path, proxies, start_node):
    ca, crt, key = make_certificates(tmp_path)
    proxy = proxies(tls=(crt, key))  # TLS ends at the proxy; Mosquitto behind it is plain
    node = start_node("kiosk-76", port=proxy.port, tls_ca=str(ca))
    wait_for(lambda: node.online, timeout=15)
    assert node.session.protocol == 4 and proxy.levels == [5, 4]


def test_fallback_client_is_closed_with_the_session(proxies, start_node):
    """Closing a node that fell back ends both clients' network threads."""
    proxy = proxies()
    node = start_node("kiosk-77", port=proxy.port)
    wait_for(lambda: node.online)
    node.close()
    assert [t for t in threading.enumerate() if t.name == "paho-mqtt-client-kiosk-77"] == []

