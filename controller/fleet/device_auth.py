"""Device authentication for HTTP downloads, against the broker's password file.

A device already holds a password the broker checks (its Mosquitto ``$7$``
PBKDF2-SHA512 hash is in the password file), so the same credentials, sent
as HTTP Basic, let it fetch audio: no second secret to provision.
"""

from __future__ import annotations

import base64
import binascii
import pathlib
import threading

from controller.errors import Unauthorized
from provisioning.identity import verify_password


class DeviceAuth:
    """Checks ``Authorization: Basic`` headers against a Mosquitto password file."""

    def __init__(self, passwd_file: str | pathlib.Path | None):
        self.passwd_file = pathlib.Path(passwd_file) if passwd_file else None
        self._lock = threading.Lock()
        self._ok: dict[tuple[str, str], str] = {}  # (user, password) -> hash it matched

    def _hash_of(self, user: str) -> str | None:
        if self.passwd_file is None or not self.passwd_file.exists():
            return None
        for line in self.passwd_file.read_text().splitlines():
            name, _, hashed = line.partition(":")
            if name == user:
                return hashed
        return None

    def check(self, header: str | None) -> str:
        """The device id of a valid Basic header; raise :class:`Unauthorized` otherwise."""
        if not header or not header.startswith("Basic "):
            raise Unauthorized("missing 'Authorization: Basic' device credentials")
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        stored = self._hash_of(user)
        with self._lock:
            if stored is not None and self._ok.get((user, password)) == stored:
                return user  # verified before against the same hash
        if stored is None or not verify_password(password, stored):
            raise Unauthorized(f"unknown device or wrong password for {user!r}")
        with self._lock:
            self._ok[(user, password)] = stored
        return user

