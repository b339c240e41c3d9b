"""Node configuration: one TOML file parsed once, at the edge, into typed objects."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import pathlib
from typing import Any

from node_runtime.errors import ConfigError
from wire.errors import TopicError
from wire.topics import check_device_id

CLOCK_CHECKS = ("adjtimex", "always", "never")

#: ``[mqtt] protocol``: MQTT 5, falling back to 3.1.1 if the broker refuses 5.
PROTOCOL_AUTO = "auto"
#: The values ``[mqtt] protocol`` accepts: auto, or 5 / 4 (3.1.1) forced.
PROTOCOLS = (PROTOCOL_AUTO, 5, 4)


@dataclasses.dataclass(frozen=True)
class MqttSettings:
    """How to reach the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None  # defaults to the device id
    password: str | None = None
    keepalive: int = 30
    protocol: int | str = PROTOCOL_AUTO  # "auto" (5, else 3.1.1); 5 or 4 (3.1.1) forced
    tls_ca: str | None = None  # path to a CA file turns TLS on
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0

    def __post_init__(self) -> None:
        # Checked here, not in NodeConfig: the controller builds these settings too.
        if self.protocol not in PROTOCOLS or isinstance(self.protocol, bool | float):
            raise ConfigError(f"mqtt protocol {self.protocol!r}: expected "
                              f"{PROTOCOL_AUTO!r}, 5 or 4 (3.1.1)")


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """Everything the runtime needs; role-specific settings stay in ``role``."""

    device_id: str
    role: str
    data_dir: pathlib.Path
    mqtt: MqttSettings = MqttSettings()
    telemetry_interval: float = 60.0
    outbox_window: int = 100
    resend_after: float = 15.0
    clock_check: str = "adjtimex"
    #: The clock's holdover without NTP (node_runtime.clock.ClockTrust): the drift its
    #: crystal may have, and how far off the clock may be before it is not trusted.
    clock_drift_ppm: float = 50.0
    clock_tolerance_s: float = 60.0
    #: The technician's status page (:mod:`node_runtime.status_page`); 0 turns it off.
    status_port: int = 8080
    status_bind: str = "0.0.0.0"
    role_settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_device_id(self.device_id)
        except TopicError as exc:
            raise ConfigError(str(exc)) from None
        if self.clock_check not in CLOCK_CHECKS:
            raise ConfigError(f"clock_check {self.clock_check!r}: expected one of {CLOCK_CHECKS}")
        if not (0 < self.clock_drift_ppm <= 1000 and 0 < self.clock_tolerance_s <= 3600):
            raise ConfigError(f"clock_drift_ppm {self.clock_drift_ppm!r} / clock_tolerance_s "
                              f"{self.clock_tolerance_s!r}: expected 0-1000 ppm and 0-3600 s")
        if self.outbox_window < 1:
            raise ConfigError(f"outbox window {self.outbox_window!r}: expected at least 1")
        if self.telemetry_interval <= 0:
            raise ConfigError(f"telemetry interval {self.telemetry_interval!r}: expected > 0")
        port = self.status_port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"status_port {port!r}: expected 0 (off) to 65535")
        try:
            ipaddress.ip_address(self.status_bind if isinstance(self.status_bind, str) else "")
        except ValueError:
            raise ConfigError(f"status_bind {self.status_bind!r}: expected an IP address, "
                              "e.g. 0.0.0.0 (every interface) or 127.0.0.1") from None


def load_config(path: str | pathlib.Path) -> NodeConfig:
    """Read a node's TOML file (see ``docs/operations.md`` for its sections)."""
    import tomllib  # only entry points read files; keeps a node's memory down

    path = pathlib.Path(path)
    _keep_private(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read node config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"node config {path} is not valid TOML: {exc}") from None
    return config_from_dict(raw, base_dir=path.parent)


def _keep_private(path: pathlib.Path) -> None:
    """The node file holds the device's password: 0600 (group and others shut out). A
    looser one (copied with cp, unpacked from a card) is tightened, with a warning; one
    that cannot be (another owner's) is refused, naming the fix."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return  # reading it says why
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & 0o700)
    except OSError as exc:
        raise ConfigError(f"node config {path} is readable by others (mode {mode:o}) and "
                          f"cannot be made private ({exc.strerror}): chmod 600 {path}") from None
    logging.getLogger(__name__).warning(
        "node config %s was readable by others (mode %o): made 0600", path, mode)


def config_from_dict(raw: dict[str, Any], base_dir: pathlib.Path | None = None) -> NodeConfig:
    """Build a :class:`NodeConfig` from the parsed TOML tables."""
    device = _table(raw, "device")
    for key in ("id", "role"):
        if key not in device:
            raise ConfigError(f"node config lacks device.{key}")
    data_dir = pathlib.Path(device.get("data_dir", "/var/lib/thanthien"))
    if base_dir is not None and not data_dir.is_absolute():
        data_dir = base_dir / data_dir
    mqtt_raw = _table(raw, "mqtt")
    known = {f.name for f in dataclasses.fields(MqttSettings)}
    unknown = set(mqtt_raw) - known
    if unknown:
        raise ConfigError(f"unknown mqtt setting(s) {sorted(unknown)}; known: {sorted(known)}")
    try:
        mqtt = MqttSettings(**mqtt_raw)
    except TypeError as exc:
        raise ConfigError(f"bad mqtt settings: {exc}") from None
    runtime = _table(raw, "runtime")
    return NodeConfig(
        device_id=device["id"],
        role=device["role"],
        data_dir=data_dir,
        mqtt=mqtt,
        telemetry_interval=float(runtime.get("telemetry_interval", 60.0)),
        outbox_window=int(runtime.get("outbox_window", 100)),
        resend_after=float(runtime.get("resend_after", 15.0)),
        clock_check=runtime.get("clock_check", "adjtimex"),
        clock_drift_ppm=float(runtime.get("clock_drift_ppm", 50.0)),
        clock_tolerance_s=float(runtime.get("clock_tolerance_s", 60.0)),
        status_port=runtime.get("status_port", 8080),
        status_bind=runtime.get("status_bind", "0.0.0.0"),
        role_settings=_table(raw, device["role"]),
    )


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"node config [{name}] must be a table, not {type(value).__name__}")
    return value
