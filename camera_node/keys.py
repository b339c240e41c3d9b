"""The camera's signing key: Ed25519, one per device, never leaves it.

Made at provisioning (or at the first start if it is missing) and kept
readable by its owner only; the controller registers the public half, so a
manifest re-signed with any other key is caught.
"""

from __future__ import annotations

import logging
import os
import pathlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from camera_node.errors import ConfigError

log = logging.getLogger(__name__)


def load_or_create_key(path: str | pathlib.Path) -> Ed25519PrivateKey:
    """The key in ``path`` (PEM PKCS#8, or 32 raw bytes); a new one, written 0600, if the
    file does not exist."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _create(path)
    return _parse(path, data)


def _parse(path: pathlib.Path, data: bytes) -> Ed25519PrivateKey:
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an Ed25519 private key (PEM or 32 raw bytes): "
                          f"{exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: a {type(key).__name__}, expected an Ed25519 key")
    return key


def _create(path: pathlib.Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
    log.warning("no camera key at %s: made a new one (%s); register its public key",
                path, public_key_hex(key))
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    """The public key as 64 hex digits, the form ``camera.pub`` and the controller keep."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return raw.hex()
