"""Writing a node's TOML file (the reader is :func:`node_runtime.config.load_config`)."""

from __future__ import annotations

import json
from typing import Any

from provisioning.identity import DeviceIdentity


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def node_file_text(identity: DeviceIdentity, *, mqtt_host: str, mqtt_port: int,
                   data_dir: str, runtime: dict[str, Any] | None = None,
                   role_settings: dict[str, Any] | None = None,
                   tls_ca: str | None = None) -> str:
    """The full node file for ``identity``; ``tls_ca`` (the commune CA's path on the
    device) turns TLS on."""
    tables: dict[str, dict[str, Any]] = {
        "device": {"id": identity.device_id, "role": identity.role, "data_dir": data_dir},
        "mqtt": {"host": mqtt_host, "port": mqtt_port, "username": identity.device_id,
                 "password": identity.password, "tls_ca": tls_ca},
        "runtime": runtime or {},
        identity.role: role_settings or {},
    }
    lines = ["# thanthien node file: written by provisioning; holds the device's password."]
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines += [f"{key} = {_value(v)}" for key, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"
