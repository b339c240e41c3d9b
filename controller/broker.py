"""Mosquitto, configured by the project: auth on, per-device accounts, ACL patterns.

The ACL's ``pattern`` lines (from :func:`wire.topics.acl_patterns`) confine
every device, whose username is its device id, to its own subtree; the
controller's account reads and writes the whole tree. Password hashes use
Mosquitto 2's ``$7$`` format (PBKDF2-SHA512), so a password file can be
written offline without ``mosquitto_passwd``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time

from controller.errors import BrokerError
from wire.topics import ROOT, acl_patterns

log = logging.getLogger(__name__)

CONTROLLER_USER = "controller"
_ITERATIONS = 101


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password-file hash (``$7$``: PBKDF2-SHA512, 101 rounds)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BrokerConfig:
    """The files of one Mosquitto instance, kept in ``directory``."""

    def __init__(self, directory: str | pathlib.Path, *, port: int = 1883,
                 host: str = "127.0.0.1", max_queued_messages: int = 10_000,
                 tls_cert: str | None = None, tls_key: str | None = None):
        self.directory = pathlib.Path(directory)
        self.port, self.host = port, host
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.max_queued_messages = max_queued_messages
        self.conf = self.directory / "mosquitto.conf"
        self.passwd = self.directory / "passwd"
        self.acl = self.directory / "acl"

    def users(self) -> dict[str, str]:
        """Username -> hash, from the password file."""
        if not self.passwd.exists():
            return {}
        lines = self.passwd.read_text().splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def set_user(self, username: str, password: str) -> None:
        """Add or replace an account (takes effect on the broker's next reload)."""
        users = self.users()
        users[username] = hash_password(password)
        self._write(self.passwd, "".join(f"{u}:{h}\n" for u, h in sorted(users.items())))

    def add_hashed(self, username: str, password_hash: str) -> None:
        """Add an account whose hash was made elsewhere (e.g. by offline provisioning)."""
        if not password_hash.startswith("$7$"):
            raise BrokerError(f"hash for {username!r} is not a Mosquitto $7$ hash")
        users = self.users()
        users[username] = password_hash
        self._write(self.passwd, "".join(f"{u}:{h}\n" for u, h in sorted(users.items())))

    def write(self) -> None:
        """Write mosquitto.conf and the ACL file (the password file is kept)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "data").mkdir(exist_ok=True)
        if not self.passwd.exists():
            self._write(self.passwd, "")
        acl = [f"user {CONTROLLER_USER}", f"topic readwrite {ROOT}/#", "", *acl_patterns(), ""]
        self._write(self.acl, "\n".join(acl))
        d = self.directory.resolve()
        self._write(self.conf, "\n".join([
            "# Written by thanthien; regenerate rather than edit.",
            # Started as root, mosquitto drops to this user; the files are ours and 0600.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {d / 'passwd'}",
            f"acl_file {d / 'acl'}",
            f"listener {self.port} {self.host}",
            *([f"certfile {self.tls_cert}", f"keyfile {self.tls_key}"] if self.tls_cert else []),
            "persistence true",
            f"persistence_location {d / 'data'}/",
            "autosave_interval 30",
            f"max_queued_messages {self.max_queued_messages}",
            "max_inflight_messages 200",
            # Small messages must not wait for Nagle's algorithm (tens of ms per hop).
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]))

    @staticmethod
    def _write(path: pathlib.Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


class Mosquitto:
    """A Mosquitto process running a :class:`BrokerConfig` (for the demo and tests)."""

    def __init__(self, config: BrokerConfig, *, binary: str | None = None):
        self.config = config
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if not os.path.exists(self.binary):
            raise BrokerError(f"mosquitto not found at {self.binary}: install the 'mosquitto' "
                              "package (make setup does)")
        self.config.write()
        log_file = open(self.config.directory / "mosquitto.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen([self.binary, "-c", str(self.config.conf)],
                                        stdout=log_file, stderr=log_file)
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self.process.returncode}; see "
                                  f"{self.config.directory / 'mosquitto.log'}")
            try:
                socket.create_connection((self.config.host, self.config.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on port {self.config.port} in {timeout} s")

    def reload(self) -> None:
        """Re-read the password and ACL files (SIGHUP)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL, as a power cut or OOM would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
