"""Screenshots of a kiosk: what citizens see, for a technician far away.

The technician asks; the controller sends the device a ``screenshot``
command carrying a one-time upload URL; the device PUTs a PNG there. The
URL's token is the upload's only credential (devices hold no API token),
is single-use, and only accepts a PNG.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import sqlite_utils

from controller.errors import InvalidRequest, NotFound
from controller.http import Request, Response, Router

if TYPE_CHECKING:
    from controller.service import Controller

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PNG = 16 << 20
COMMAND = "screenshot"


def request_screenshot(ctl: Controller, device_id: str, base_url: str) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)

    def task(db: sqlite_utils.Database) -> None:
        if db.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is None:
            raise NotFound(f"no device {device_id!r}")
        db.execute("INSERT INTO screenshots (token, device, requested) VALUES (?, ?, ?)",
                   (token, device_id, time.time()))

    ctl.writer.call(task)
    url = f"{base_url.rstrip('/')}/api/v1/screenshots/{token}"
    return ctl.commands.create(device_id, COMMAND, {"url": url}, 300)


def receive(ctl: Controller, token: str, body: bytes) -> dict[str, Any]:
    if not body.startswith(PNG_MAGIC):
        raise InvalidRequest("screenshot upload is not a PNG")

    def task(db: sqlite_utils.Database) -> int:
        return int(db.execute("UPDATE screenshots SET png = ?, received = ? WHERE token = ?"
                              " AND received IS NULL", (body, time.time(), token)).rowcount)

    if not ctl.writer.call(task):
        raise NotFound("unknown or already used screenshot token")
    return {"bytes": len(body)}


def latest(db: sqlite_utils.Database, device_id: str) -> Response:
    row = db.execute("SELECT png, received FROM screenshots WHERE device = ? AND png IS NOT NULL"
                     " ORDER BY received DESC LIMIT 1", (device_id,)).fetchone()
    if row is None:
        raise NotFound(f"no screenshot from {device_id!r} yet")
    return Response(row[0], "image/png", headers={"X-Received": str(row[1])})


def add_routes(router: Router, ctl: Controller) -> None:
    """Screenshot request, upload and download."""
    @router.add("POST", "/api/v1/devices/{id}/screenshot",
                "Ask a kiosk for a screenshot: {base_url} (how the device reaches this API)",
                status=201)
    def ask(req: Request) -> dict[str, Any]:
        body = req.json_object() if req.body else {}
        base = body.get("base_url") or f"http://{req.headers.get('Host') or 'localhost'}"
        return request_screenshot(ctl, req.params["id"], base)

    @router.add("PUT", "/api/v1/screenshots/{token}", "A device uploads a requested PNG",
                public=True, max_body=MAX_PNG)
    def upload(req: Request) -> dict[str, Any]:
        return receive(ctl, req.params["token"], req.body)

    @router.add("GET", "/api/v1/devices/{id}/screenshot", "The latest screenshot (PNG)")
    def get(req: Request) -> Response:
        return latest(ctl.reader(), req.params["id"])
