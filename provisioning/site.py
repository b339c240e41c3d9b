"""A commune's site settings for its devices' cards, as a TOML file (``--site``) or flags.

The same keys serve ``thanthien-provision`` on a technician's machine and the
controller's console (``serve --device-site FILE``): ``mqtt_host``,
``mqtt_port``, ``mqtt_plain``, ``ca``, ``controller_url``, ``wifi_ssid``,
``wifi_key``, ``apn``, ``os``, ``ntp``, ``admin_user``, ``ssh_key``,
``wheels_cache``. Relative paths are from the file's folder.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from provisioning.bundle import Site
from provisioning.network import Network

KEYS = ("mqtt_host", "mqtt_port", "mqtt_plain", "ca", "controller_url", "wifi_ssid",
        "wifi_key", "apn", "os", "ntp", "admin_user", "ssh_key", "wheels_cache")
DEFAULT_CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")
                             ) / "thanthien" / "wheelhouse"


def read_site(path: pathlib.Path) -> dict[str, Any]:
    """The settings in a site file; ValueError naming the file and the bad key."""
    import tomllib
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {', '.join(KEYS)}")
    for key in ("ca", "ssh_key", "wheels_cache"):
        if isinstance(values.get(key), str):
            values[key] = str(path.parent / pathlib.Path(values[key]).expanduser())
    return values


def make_site(values: dict[str, Any]) -> Site:
    """A :class:`Site` from settings; ValueError naming what is missing or wrong."""
    if not values.get("mqtt_host"):
        raise ValueError("the broker's host is needed: mqtt_host (--mqtt-host)")
    ssh, ntp = values.get("ssh_key"), values.get("ntp")
    try:
        ssh_keys = tuple(pathlib.Path(ssh).read_text().split("\n")[:1]) if ssh else ()
    except OSError as exc:
        raise ValueError(f"SSH key {ssh}: {exc.strerror}") from None
    return Site(
        mqtt_host=str(values["mqtt_host"]), mqtt_port=int(values.get("mqtt_port", 8883)),
        mqtt_tls=not values.get("mqtt_plain", False),
        controller_url=values.get("controller_url"),
        ca_file=pathlib.Path(values["ca"]) if values.get("ca") else None,
        network=Network(ssid=values.get("wifi_ssid") or None,
                        psk=values.get("wifi_key") or None, apn=values.get("apn") or None),
        release=values.get("os", "trixie"),
        admin_user=values.get("admin_user", "kythuat"),
        ssh_keys=ssh_keys,
        **({"ntp_servers": tuple(s.strip() for s in ntp.split(",") if s.strip())}
           if ntp else {}))


def wheels_cache(values: dict[str, Any]) -> pathlib.Path:
    return pathlib.Path(values.get("wheels_cache") or DEFAULT_CACHE)
