"""Screenshots of a kiosk: what citizens see, for a technician far away.

The technician asks; the controller sends the device a ``screenshot``
command carrying a one-time upload URL; the device PUTs a PNG there. The
URL's token is the upload's only credential (devices hold no API token),
is single-use, and only accepts a PNG.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.errors import InvalidRequest, NotFound, _t
from controller.fleet.commands import Commands
from wire.rating import CMD_SCREENSHOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PNG = 16 << 20


class Screenshots:
    """Asks kiosks for screenshots and keeps what they send."""

    def __init__(self, writer: Writer, commands: Commands):
        self.writer, self.commands = writer, commands

    def request(self, device_id: str, base_url: str) -> dict[str, Any]:
        """Send the device a ``screenshot`` command with a one-time upload URL."""
        return request_screenshot(self.writer, self.commands, device_id, base_url)

    def receive(self, token: str, body: bytes) -> dict[str, Any]:
        """Keep an uploaded PNG if ``token`` is an unused one."""
        return receive(self.writer, token, body)


def request_screenshot(writer: Writer, commands: Commands, device_id: str,
                       base_url: str) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)

    def task(db: sqlite_utils.Database) -> None:
        if db.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is None:
            raise NotFound(_t("no device {id!r}"), id=device_id)
        db.execute("INSERT INTO screenshots (token, device, requested) VALUES (?, ?, ?)",
                   (token, device_id, time.time()))

    writer.call(task)
    url = f"{base_url.rstrip('/')}/api/v1/screenshots/{token}"
    return commands.create(device_id, CMD_SCREENSHOT, {"url": url}, 300)


def receive(writer: Writer, token: str, body: bytes) -> dict[str, Any]:
    if not body.startswith(PNG_MAGIC):
        raise InvalidRequest("screenshot upload is not a PNG")

    def task(db: sqlite_utils.Database) -> int:
        return int(db.execute("UPDATE screenshots SET png = ?, received = ? WHERE token = ?"
                              " AND received IS NULL", (body, time.time(), token)).rowcount)

    if not writer.call(task):
        raise NotFound("unknown or already used screenshot token")
    return {"bytes": len(body)}


def latest(db: sqlite_utils.Database, device_id: str) -> tuple[bytes, float]:
    """The newest screenshot of a device: (PNG bytes, when it was received)."""
    row = db.execute("SELECT png, received FROM screenshots WHERE device = ? AND png IS NOT NULL"
                     " ORDER BY received DESC LIMIT 1", (device_id,)).fetchone()
    if row is None:
        raise NotFound(_t("no screenshot from {id!r} yet"), id=device_id)
    return bytes(row[0]), float(row[1])
