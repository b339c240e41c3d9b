"""systemd ``Type=notify`` readiness and watchdog pings, without libsystemd.

The entry point passes ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` in; with no
socket every call is a no-op, so the same code runs outside systemd.
"""

from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends ``READY=1``, ``WATCHDOG=1`` and ``STATUS=...`` datagrams."""

    def __init__(self, notify_socket: str | None, watchdog_usec: str | int | None = None):
        self.address = notify_socket
        if notify_socket and notify_socket.startswith("@"):
            self.address = "\0" + notify_socket[1:]  # abstract namespace
        usec = int(watchdog_usec) if watchdog_usec else 0
        #: How often to ping: half the watchdog timeout, as sd_watchdog_enabled advises.
        self.watchdog_interval = usec / 2e6 if usec else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, message: str) -> None:
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message.encode(), self.address)
            except OSError as exc:
                log.warning("cannot notify systemd: %s", exc)

    def ready(self) -> None:
        self.notify("READY=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
