"""A device's identity: its id (also its broker username), role and password.

This module owns how broker credentials are made and checked: Mosquitto 2's
``$7$`` password-file hash (PBKDF2-SHA512), written offline without
``mosquitto_passwd``. The controller imports it (for its broker accounts and
for devices' HTTP downloads); nothing here imports the controller.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import secrets

from wire.topics import check_device_id

_ITERATIONS = 101


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password-file hash (``$7$``: PBKDF2-SHA512, 101 rounds)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches a Mosquitto ``$7$iterations$salt$hash`` entry."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except (ValueError, binascii.Error):
        return False
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(computed, digest)


def new_password() -> str:
    """A random password of 192 bits, URL-safe."""
    return secrets.token_urlsafe(24)


def password_file_line(username: str, password_hash: str) -> str:
    """One line of Mosquitto's password file."""
    return f"{username}:{password_hash}\n"


@dataclasses.dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    role: str
    password: str
    hamlet: str | None = None
    label: str | None = None

    @property
    def password_hash(self) -> str:
        """The line's hash for the broker's password file."""
        return hash_password(self.password)


def new_identity(device_id: str, role: str, *, hamlet: str | None = None,
                 label: str | None = None) -> DeviceIdentity:
    """A fresh identity with a random password; raises ``TopicError`` for a bad id."""
    return DeviceIdentity(check_device_id(device_id), role, new_password(), hamlet, label)


def new_camera_key() -> tuple[bytes, str]:
    """A camera's own Ed25519 signing key: (the private key as PEM PKCS#8, for the
    camera's ``camera.key``; the public key as 64 hex digits, for its card)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    return pem, public.hex()
