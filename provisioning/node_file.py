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


def toml_text(tables: dict[str, dict[str, Any]], comment: str) -> str:
    """TOML of flat tables (None values left out), after a comment line."""
    lines = [f"# {comment}"]
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines += [f"{key} = {_value(v)}" for key, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def node_file_text(identity: DeviceIdentity, *, mqtt_host: str, mqtt_port: int,
                   data_dir: str, runtime: dict[str, Any] | None = None,
                   role_settings: dict[str, Any] | None = None,
                   tls_ca: str | None = None, enrol: dict[str, Any] | None = None) -> str:
    """The full node file for ``identity``; ``tls_ca`` (the commune CA's path on the
    device) turns TLS on. With ``enrol`` (``token``, ``controller_url``) the device has no
    password yet: it claims one at its first start (:mod:`node_runtime.enrol`)."""
    tables: dict[str, dict[str, Any]] = {
        "device": {"id": identity.device_id, "role": identity.role, "data_dir": data_dir},
        "mqtt": {"host": mqtt_host, "port": mqtt_port, "username": identity.device_id,
                 "password": None if enrol else identity.password, "tls_ca": tls_ca},
        "runtime": runtime or {},
        identity.role: role_settings or {},
    }
    if enrol:
        tables["enrol"] = enrol
    secret = "its enrolment token" if enrol else "the device's password"
    return toml_text(tables, f"thanthien node file: written by provisioning; holds {secret}.")
