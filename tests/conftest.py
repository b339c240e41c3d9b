"""Fixtures: a real Mosquitto per test run, a real controller, real nodes.

Every fixture restores what it changed: brokers are stopped, nodes and
controllers closed, temporary folders removed by pytest.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port
from controller.service import Controller
from node_runtime.config import MqttSettings, NodeConfig
from node_runtime.node import Node
from wire.topics import ROOT

CONTROLLER_PASSWORD = "controller-test-password"
DEVICE_PASSWORD = "device-test-password"
#: A test's own account with the controller's access, for listening and forging beside a
#: running controller: the broker makes the username the client id, so a second
#: connection with the controller's account would close the controller's.
PEER_USER, PEER_PASSWORD = "test-peer", "test-peer-password"


class TestBrokerConfig(BrokerConfig):
    """The project's broker configuration plus the tests' peer account."""

    def acl_lines(self) -> list[str]:
        return [f"user {PEER_USER}", f"topic readwrite {ROOT}/#", "", *super().acl_lines()]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


class BrokerFixture:
    """A Mosquitto with the controller's account and any device accounts asked for."""

    def __init__(self, directory: pathlib.Path):
        self.config = TestBrokerConfig(directory, port=free_port())
        self.config.set_user(CONTROLLER_USER, CONTROLLER_PASSWORD)
        self.config.set_user(PEER_USER, PEER_PASSWORD)
        self.process = Mosquitto(self.config)

    @property
    def port(self) -> int:
        return self.config.port

    def add_device(self, device_id: str, password: str = DEVICE_PASSWORD) -> None:
        self.config.set_user(device_id, password)
        self.process.reload()
        time.sleep(0.1)  # mosquitto re-reads the password file asynchronously

    def controller_settings(self) -> MqttSettings:
        return MqttSettings(port=self.port, username=CONTROLLER_USER,
                            password=CONTROLLER_PASSWORD, keepalive=5,
                            reconnect_min=0.1, reconnect_max=1.0)

    def peer_settings(self) -> MqttSettings:
        """The test peer's account (see :data:`PEER_USER`)."""
        return MqttSettings(port=self.port, username=PEER_USER, password=PEER_PASSWORD,
                            keepalive=5, reconnect_min=0.1, reconnect_max=1.0)

    def device_settings(self, device_id: str, keepalive: int = 5) -> MqttSettings:
        return MqttSettings(port=self.port, username=device_id, password=DEVICE_PASSWORD,
                            keepalive=keepalive, reconnect_min=0.1, reconnect_max=1.0)


@pytest.fixture
def broker(tmp_path: pathlib.Path) -> Iterator[BrokerFixture]:
    fixture = BrokerFixture(tmp_path / "broker")
    fixture.process.start()
    yield fixture
    fixture.process.stop()


@pytest.fixture
def make_controller(tmp_path: pathlib.Path, broker: BrokerFixture) -> Iterator[
        Callable[[], Controller]]:
    """Start a controller on the test broker (``Controller`` options as keywords); the
    same database each call."""
    made: list[Controller] = []

    def make(**options: Any) -> Controller:
        ctl = Controller(tmp_path / "controller" / "controller.db", broker.controller_settings(),
                         http_port=0, sweep_interval=0.5, broker_passwd=broker.config.passwd,
                         **options)
        ctl.start()
        made.append(ctl)
        wait_for(ctl.hub.session.is_connected.is_set)
        return ctl

    yield make
    for ctl in made:
        ctl.close()


@pytest.fixture
def controller(make_controller: Callable[[], Controller]) -> Controller:
    return make_controller()


def node_config(tmp_path: pathlib.Path, broker: BrokerFixture, device_id: str,
                role: str = "kiosk", **runtime: Any) -> NodeConfig:
    return NodeConfig(
        device_id=device_id, role=role, data_dir=tmp_path / "nodes" / device_id,
        mqtt=broker.device_settings(device_id), telemetry_interval=runtime.pop("telemetry", 60),
        resend_after=runtime.pop("resend_after", 3.0), clock_check="always",
        status_port=runtime.pop("status_port", 0), **runtime,
    )


def write_node_file(tmp_path: pathlib.Path, broker: BrokerFixture, device_id: str,
                    keepalive: int = 5) -> pathlib.Path:
    """The node file of a device that runs in its own process (for kill tests)."""
    from provisioning.identity import DeviceIdentity
    from provisioning.node_file import node_file_text
    identity = DeviceIdentity(device_id, "kiosk", DEVICE_PASSWORD)
    text = node_file_text(identity, mqtt_host="127.0.0.1", mqtt_port=broker.port,
                          data_dir=str(tmp_path / "nodes" / device_id))
    path = tmp_path / f"{device_id}.toml"
    path.write_text(text.replace("[runtime]", "[runtime]\nresend_after = 3.0").replace(
        'password = "', f'keepalive = {keepalive}\npassword = "'))
    return path


@pytest.fixture
def make_node(tmp_path: pathlib.Path, broker: BrokerFixture) -> Iterator[Callable[..., Node]]:
    """Build a started node with broker credentials; ``register`` approves it first."""
    made: list[Node] = []

    def make(device_id: str, *, controller: Controller | None = None, start: bool = True,
             role: str = "kiosk", **runtime: Any) -> Node:
        broker.add_device(device_id)
        if controller is not None:
            controller.registry.add(device_id, role)
        node = Node(node_config(tmp_path, broker, device_id, role, **runtime))
        made.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in made:
        node.close()


# The loudspeaker tests' fixtures (ALSA file devices, a controller testbed).
# The console's browser (Debian's Chromium through Playwright).
from console_browser import browser  # noqa: E402,F401
from speaker_support import alsa_dir, bed  # noqa: E402,F401
