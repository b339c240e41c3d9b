"""A loopback TCP proxy in front of the real Mosquitto that can play an MQTT 3.1.1-only broker.

It reads each connection's first packet (the CONNECT) and records its
protocol level. With ``refuse_v5="connack"`` a version-5 CONNECT is answered
the way a 3.1.1-only broker answers it (CONNACK return code 1 "unacceptable
protocol version", then close); with ``refuse_v5="close"`` the connection is
closed unanswered. Any other CONNECT (every CONNECT with ``refuse_v5=None``)
is passed to Mosquitto and the bytes are forwarded both ways from then on.
Given a certificate, the proxy terminates TLS (Mosquitto behind it stays plain).
"""

from __future__ import annotations

import pathlib
import selectors
import socket
import ssl
import threading

#: CONNACK, remaining length 2, no session present, return code 1 (MQTT 3.1.1 §3.2.2.3).
CONNACK_UNACCEPTABLE_PROTOCOL = bytes([0x20, 0x02, 0x00, 0x01])


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed mid-packet")
        data += chunk
    return data


def read_packet(sock: socket.socket) -> bytes:
    """One whole MQTT packet: fixed header, variable-length remaining length, the rest."""
    header = read_exactly(sock, 1)
    length, shift = 0, 0
    while True:
        byte = read_exactly(sock, 1)
        header += byte
        length += (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            break
        shift += 7
    return header + read_exactly(sock, length)


def connect_protocol_level(packet: bytes) -> int:
    """The protocol level byte of a CONNECT: after the header and the protocol name."""
    if packet[0] & 0xF0 != 0x10:
        raise ValueError(f"first packet is type {packet[0] >> 4}, not CONNECT")
    i = 1
    while packet[i] & 0x80:  # skip the remaining length
        i += 1
    i += 1
    name_length = int.from_bytes(packet[i:i + 2], "big")
    return packet[i + 2 + name_length]


class BrokerProxy:
    """Listens on a free loopback port; a context manager that joins its threads on exit."""

    def __init__(self, upstream_port: int, *, refuse_v5: str | None = "connack",
                 tls: tuple[pathlib.Path, pathlib.Path] | None = None):
        if refuse_v5 not in ("connack", "close", None):
            raise ValueError(f"refuse_v5 {refuse_v5!r}: expected 'connack', 'close' or None")
        self.upstream_port = upstream_port
        self.refuse_v5 = refuse_v5
        self._tls: ssl.SSLContext | None = None
        if tls is not None:  # (certificate, key)
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        #: The protocol level of every CONNECT seen, in order.
        self.levels: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._accepting.start()

    def close(self) -> None:
        self._stop.set()
        self._accepting.join()
        for thread in self._threads:
            thread.join()
        self._listener.close()

    def __enter__(self) -> BrokerProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(client,), name="proxy-conn",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(5)
            if self._tls is not None:
                client = self._tls.wrap_socket(client, server_side=True)
            connect = read_packet(client)
            level = connect_protocol_level(connect)
            self.levels.append(level)
            if level == 5 and self.refuse_v5 is not None:
                if self.refuse_v5 == "connack":
                    client.sendall(CONNACK_UNACCEPTABLE_PROTOCOL)
                return
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                upstream.sendall(connect)
                self._pump(client, upstream)
        except OSError:  # a peer went away: so does the connection
            return
        finally:
            client.close()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        """Forward bytes both ways until either side closes or the proxy stops."""
        a.settimeout(None)  # the selector says when there is something to read
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.2):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                        # TLS may hold decrypted bytes the selector cannot see.
                        while isinstance(source, ssl.SSLSocket) and source.pending():
                            data += source.recv(source.pending())
                    except OSError:
                        return
                    if not data:
                        return
                    key.data.sendall(data)
