"""A device's identity: its id (also its broker username), role and password."""

from __future__ import annotations

import dataclasses

from controller.broker import hash_password, new_password
from wire.topics import check_device_id


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
