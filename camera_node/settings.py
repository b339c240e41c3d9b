"""The camera's ``[camera]`` settings, parsed once into a typed object.

Keys: ``source`` (``picamera2`` on a Pi, ``synthetic`` for the demo and
tests), ``width``, ``height``, ``fps``, ``bitrate`` (bits/s),
``keyframe_interval_s`` (1-2 s), ``segment_s`` (default 60), ``retention_days``
(default 30), ``quota_gb`` (footage kept at most; none = the disk),
``min_free_mb`` (free space kept on the filesystem), ``hold_days`` (a hold
without an expiry), ``controller_url`` and ``controller_ca`` (where clips are
uploaded; the same HTTPS rule as every node: :mod:`node_runtime.https`),
``upload_kbps`` (a clip upload's ceiling, so a hamlet link stays usable).
No audio setting: the camera never records sound.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from node_runtime.errors import ConfigError

SOURCES = ("picamera2", "synthetic")


@dataclasses.dataclass(frozen=True)
class CameraSettings:
    source: str = "picamera2"
    width: int = 1920
    height: int = 1080
    fps: int = 30
    bitrate: int = 4_000_000
    keyframe_interval_s: float = 1.0
    segment_s: float = 60.0
    retention_days: float = 30.0
    quota_gb: float | None = None
    min_free_mb: float = 512.0
    hold_days: float = 90.0
    controller_url: str | None = None
    controller_ca: str | None = None
    upload_kbps: float = 2000.0

    @property
    def quota_bytes(self) -> int | None:
        return None if self.quota_gb is None else int(self.quota_gb * (1 << 30))

    @property
    def upload_bytes_s(self) -> float:
        return self.upload_kbps * 1000 / 8


KNOWN = tuple(f.name for f in dataclasses.fields(CameraSettings))


def parse_settings(raw: dict[str, Any]) -> CameraSettings:
    """A :class:`CameraSettings` from the node file's ``[camera]`` table; ConfigError
    names an unknown key or a value of the wrong kind."""
    unknown = set(raw) - set(KNOWN)
    if unknown:
        raise ConfigError(f"unknown [camera] setting(s) {sorted(unknown)}; known: {KNOWN}")
    values = {f.name: _value(f.name, raw[f.name], f.default)
              for f in dataclasses.fields(CameraSettings) if f.name in raw}
    settings = CameraSettings(**values)
    if settings.source not in SOURCES:
        raise ConfigError(f"[camera] source = {settings.source!r}: expected one of {SOURCES}")
    if not 0.5 <= settings.keyframe_interval_s <= 2.0:
        raise ConfigError(f"[camera] keyframe_interval_s = {settings.keyframe_interval_s}: "
                          "expected 0.5 to 2 s (segments split at keyframes)")
    if settings.segment_s < 2 * settings.keyframe_interval_s:
        raise ConfigError(f"[camera] segment_s = {settings.segment_s}: expected at least two "
                          "keyframe intervals")
    for name in ("width", "height", "fps", "bitrate", "retention_days", "upload_kbps"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"[camera] {name} = {getattr(settings, name)}: expected > 0")
    return settings


def _value(name: str, value: Any, default: Any) -> Any:
    if name in ("quota_gb",):
        if value is None:
            return None
        default = 0.0
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"[camera] {name} = {value!r}: expected a whole number")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"[camera] {name} = {value!r}: expected a number >= 0")
        return float(value)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"[camera] {name} = {value!r}: expected text")
    return value
