"""Putting a device into service: identity, broker credentials, its node file.

Works offline: everything is generated locally; the broker account (a
Mosquitto ``$7$`` hash) and the registry entry can be imported later.
"""

from provisioning.identity import DeviceIdentity, new_identity
from provisioning.node_file import node_file_text

__all__ = ["DeviceIdentity", "new_identity", "node_file_text"]
