"""systemd notify: READY=1 at start, WATCHDOG=1 pings while healthy, STOPPING=1 at close."""

from __future__ import annotations

import socket

from conftest import node_config
from node_runtime.node import Node
from node_runtime.systemd import SystemdNotifier


def test_node_notifies_ready_watchdog_and_stopping(tmp_path, broker):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(10)
        broker.add_device("kiosk-40")
        notifier = SystemdNotifier(path, watchdog_usec=400_000)  # ping every 0.2 s
        node = Node(node_config(tmp_path, broker, "kiosk-40"), notifier=notifier)
        node.start()
        assert server.recv(100) == b"READY=1"
        assert server.recv(100) == b"WATCHDOG=1"
        node.close()
        messages = set()
        while b"STOPPING=1" not in messages:
            messages.add(server.recv(100))


def test_notifier_without_socket_does_nothing():
    notifier = SystemdNotifier(None, None)
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready()  # no error
