"""A loopback TCP proxy that can cut every connection through it, to test what a device does
when its link to the controller drops in the middle of an upload."""

from __future__ import annotations

import socket
import threading


class CutProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; after ``cut_after`` bytes from clients
    (counted over all connections) it closes every connection once, then forwards again."""

    def __init__(self, target: tuple[str, int], cut_after: int | None = None):
        self.target = target
        self.cut_after = cut_after
        self.sent = 0
        self.cuts = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._cut()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if counted:
                    with self._lock:
                        self.sent += len(data)
                        due = self.cut_after is not None and self.sent >= self.cut_after
                        if due:
                            self.cut_after = None
                    if due:
                        self.cuts += 1
                        self._cut()
                        return
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _cut(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
