"""A TCP proxy between devices and their broker that can cut them off: a hamlet's link
gone, for the fault campaign (:mod:`sim.faults`)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class Proxy:
    """TCP between devices and the broker; :meth:`cut` drops every connection and refuses
    new ones for a while (a hamlet's link gone)."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._cut_until = 0.0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, seconds: float) -> None:
        with self._lock:
            self._cut_until = time.monotonic() + seconds
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close(a, b)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self.cut(0)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self._cut_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(a, b)
            with self._lock:
                with contextlib.suppress(ValueError):
                    self._pairs.remove((a, b))


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()
