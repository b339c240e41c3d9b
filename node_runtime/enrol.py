"""Enrolment by claim, on the device: its first start with a one-time token.

The node file's ``[enrol]`` table (``token``, ``controller_url``) stands in for
a password. Before the node connects, this module

1. makes the device's own broker password, once, and writes it into the node
   file (atomically, 0600), so a restart claims with the same one;
2. claims: ``POST {controller_url}/api/v1/enrol`` with the token, the hardware
   serial (device tree, else ``/proc/cpuinfo``, else the machine id), the board
   model, and the password's ``$7$`` hash: the password itself never leaves;
3. asks again with the same body until a technician approves it, then removes
   ``[enrol]`` from the node file and lets the node connect.

A refusal (expired, withdrawn or already-used token: 403) is final: it raises
:class:`EnrolmentRefused` naming the reason, and the node exits.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import threading
from collections.abc import Callable
from typing import Any

from node_runtime.errors import ConfigError, NodeError

log = logging.getLogger(__name__)

POLL_S = (5.0, 60.0)  # first wait between asks, and the longest
#: How a claim is sent: (url, body, CA file) -> (HTTP status, parsed JSON).
Post = Callable[[str, dict[str, Any], str | None], tuple[int, Any]]


class EnrolmentRefused(NodeError):
    """The controller refused the token; a technician must give a new one."""


def hardware_serial(root: pathlib.Path = pathlib.Path("/")) -> tuple[str, str | None]:
    """(serial, model) of this board: a Pi's device-tree serial, else ``/proc/cpuinfo``'s
    ``Serial``, else the machine id (not a Pi)."""
    def read(path: str) -> str | None:
        try:
            return (root / path).read_bytes().rstrip(b"\0\n").decode(errors="replace").strip()
        except OSError:
            return None
    model = read("proc/device-tree/model")
    serial = read("sys/firmware/devicetree/base/serial-number")
    if not serial:
        match = re.search(r"^Serial\s*:\s*([0-9a-fA-F]+)", read("proc/cpuinfo") or "", re.M)
        serial = match.group(1) if match else read("etc/machine-id")
    if not serial:
        raise ConfigError("cannot read this board's serial (device tree, /proc/cpuinfo or "
                          "/etc/machine-id)")
    return serial, model


def enrol_if_needed(path: str | pathlib.Path, *, stop: threading.Event | None = None,
                    post: Post | None = None,
                    root: pathlib.Path = pathlib.Path("/"),
                    status: Callable[[str], None] = lambda text: None) -> bool:
    """Claim and wait for approval if the node file asks for it; True once enrolled (or
    nothing to do), False if ``stop`` was set first."""
    import tomllib

    from provisioning.identity import hash_password, new_password
    from provisioning.node_file import toml_text

    path = pathlib.Path(path)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    enrol = raw.get("enrol")
    if not enrol:
        return True
    token, url = enrol.get("token"), enrol.get("controller_url")
    if not token or not url:
        raise ConfigError(f"{path}: [enrol] needs token and controller_url")
    mqtt = raw.setdefault("mqtt", {})
    if not mqtt.get("password") or not enrol.get("password_hash"):
        # Made once and kept in the file, so a restart claims with the same password.
        mqtt["password"] = mqtt.get("password") or new_password()
        enrol["password_hash"] = hash_password(mqtt["password"])
        _write(path, toml_text(raw, "thanthien node file: holds the device's password."))
    serial, model = hardware_serial(root)
    body = {"token": token, "serial": serial, "model": model,
            "password_hash": enrol["password_hash"]}
    ca = mqtt.get("tls_ca")
    post = post or _post
    wait = POLL_S[0]
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            code, answer = post(url.rstrip("/") + "/api/v1/enrol", body, ca)
        except OSError as exc:
            code, answer = 0, {"error": str(exc)}
        if code == 200 and isinstance(answer, dict) and answer.get("status") == "approved":
            del raw["enrol"]
            _write(path, toml_text(raw, "thanthien node file: holds the device's password."))
            log.info("enrolled as %s: approved", answer.get("device_id"))
            return True
        reason = answer.get("error") if isinstance(answer, dict) else None
        if code == 403:
            raise EnrolmentRefused(f"enrolment refused by {url}: {reason}")
        if code == 200:
            status(f"waiting for a technician to approve hardware {serial}")
            log.info("enrolment claimed (hardware %s): waiting for approval", serial)
        else:
            status(f"cannot claim enrolment at {url}: {reason or code}")
            log.warning("cannot claim enrolment at %s: %s", url, reason or f"HTTP {code}")
        stop.wait(wait)
        wait = min(wait * 1.5, POLL_S[1])
    return False


def _post(url: str, body: dict[str, Any], ca: str | None) -> tuple[int, Any]:
    import requests

    from node_runtime.https import password_in_clear, requests_verify
    if password_in_clear(url):
        raise ConfigError(f"[enrol] controller_url {url}: plain http would carry the token "
                          "in clear; give the controller's https:// address")
    try:
        response = requests.post(url, json=body, timeout=15, verify=requests_verify(ca))
    except requests.RequestException as exc:
        raise OSError(str(exc)) from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _write(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
