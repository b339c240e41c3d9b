"""The loudspeaker's ``[speaker]`` settings, parsed once into a typed object.

Keys: ``controller_url`` (where audio is downloaded), ``controller_ca``,
``output_device`` (part of the PortAudio device name; default device if
absent), ``relay_pin`` (BCM GPIO of the amplifier relay; none = no relay),
``relay_active_high``, ``amp_lead_s`` (≥ 1: scheduled items, known in advance),
``emergency_lead_s`` (default 0.3: an emergency is heard within a second of its
call), ``amp_tail_s``, ``cache_max_mb``,
``late_tolerance_s``, ``resume_after_preempt``.

The speaker downloads audio with its broker credentials (HTTP Basic), so:

- ``controller_url`` is ``https://…`` (the controller's unit serves HTTPS on
  port 8443). Its certificate is checked against ``controller_ca`` if set,
  else the ``[mqtt]`` table's ``tls_ca`` (the commune CA the node already
  trusts for the broker, which signs the controller's certificate too), else
  the system's trusted CAs (the rule every node follows:
  :mod:`node_runtime.https`). A certificate the CA did not sign fails the
  download, naming the CA file.
- Plain ``http://`` is used only to this machine's loopback (``localhost``,
  127.0.0.0/8, ``::1``): a link that never leaves the machine. To any other
  host the cache refuses to send the password: every download fails at once
  with an error naming the URL (see
  :func:`node_runtime.https.password_in_clear`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from node_runtime.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SpeakerSettings:
    controller_url: str | None = None
    controller_ca: str | None = None
    output_device: str | None = None
    relay_pin: int | str | None = None
    relay_active_high: bool = True
    amp_lead_s: float = 1.5
    emergency_lead_s: float = 0.3
    amp_tail_s: float = 2.0
    cache_max_mb: float = 512.0
    late_tolerance_s: float = 30.0
    resume_after_preempt: bool = True

    @property
    def cache_max_bytes(self) -> int:
        return int(self.cache_max_mb * (1 << 20))


KNOWN = tuple(f.name for f in dataclasses.fields(SpeakerSettings))


def parse_settings(raw: dict[str, Any]) -> SpeakerSettings:
    """A :class:`SpeakerSettings` from the node file's ``[speaker]`` table; ConfigError
    names an unknown key or a value of the wrong kind."""
    unknown = set(raw) - set(KNOWN)
    if unknown:
        raise ConfigError(f"unknown [speaker] setting(s) {sorted(unknown)}; known: {KNOWN}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(SpeakerSettings):
        if field.name in raw:
            values[field.name] = _value(field.name, raw[field.name], field.default)
    settings = SpeakerSettings(**values)
    if settings.amp_lead_s < 1.0:
        raise ConfigError(f"amp_lead_s {settings.amp_lead_s}: the relay needs at least 1 s "
                          "before sound")
    if not 0.05 <= settings.emergency_lead_s <= settings.amp_lead_s:
        raise ConfigError(f"emergency_lead_s {settings.emergency_lead_s}: expected 0.05 s up "
                          f"to amp_lead_s ({settings.amp_lead_s} s)")
    return settings


def _value(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"[speaker] {name} = {value!r}: expected true or false")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"[speaker] {name} = {value!r}: expected a number >= 0")
        return float(value)
    if name == "relay_pin":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"[speaker] relay_pin = {value!r}: expected a GPIO number or name")
        return value
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"[speaker] {name} = {value!r}: expected text")
    return value
