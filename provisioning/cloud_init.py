"""cloud-init's three files on the boot partition (Raspberry Pi OS Trixie reads them with
its NoCloud data source): ``user-data``, ``network-config``, ``meta-data``.

``user-data`` holds nothing secret (the name, the clock's zone, the technician's
public SSH keys, the first-boot command); the Wi-Fi key is in ``network-config``,
which the first boot removes from the card once cloud-init has applied it.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from provisioning.network import Network, netplan

TIMEZONE = "Asia/Ho_Chi_Minh"
BOOT_MOUNT = "/boot/firmware"  # where both releases mount the FAT partition


def user_data(hostname: str, *, admin_user: str | None, ssh_keys: list[str],
              timezone: str = TIMEZONE) -> str:
    config: dict[str, Any] = {
        "hostname": hostname,
        "manage_etc_hosts": True,
        "timezone": timezone,
        "ssh_pwauth": False,
    }
    if admin_user:
        user: dict[str, Any] = {"name": admin_user, "groups": ["sudo", "adm"],
                                "shell": "/bin/bash", "lock_passwd": True,
                                "sudo": "ALL=(ALL) NOPASSWD:ALL"}
        if ssh_keys:
            user["ssh_authorized_keys"] = ssh_keys
        config["users"] = [user]
    config["runcmd"] = [["sh", f"{BOOT_MOUNT}/thanthien/firstboot.sh"]]
    return "#cloud-config\n# Written by thanthien-provision: see docs/provisioning.md.\n" + \
        yaml(config)


def network_config(network: Network) -> str:
    return "# Written by thanthien-provision; removed from the card at first boot.\n" + \
        yaml(netplan(network))


def meta_data(hostname: str) -> str:
    """A fresh instance id per bundle: cloud-init runs its first-boot steps once per id."""
    return yaml({"instance-id": f"thanthien-{hostname}-{secrets.token_hex(4)}",
                 "local-hostname": hostname})


def yaml(value: Any, indent: int = 0) -> str:
    """Block YAML of dicts, lists and scalars; strings are JSON-quoted (valid YAML)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{_key(key)}:")
                lines.append(yaml(item, indent + 1).rstrip("\n"))
            else:
                lines.append(f"{pad}{_key(key)}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                body = yaml(item, indent + 1).rstrip("\n")
                lines.append(f"{pad}- {body.lstrip()}")
            elif isinstance(item, list):
                lines.append(f"{pad}- [{', '.join(_scalar(i) for i in item)}]")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else _scalar(key)


def _scalar(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value == {} or value == []:
        return "{}" if value == {} else "[]"
    return json.dumps(str(value), ensure_ascii=False)
