"""How a device reaches the commune's network: Wi-Fi, a 4G modem's APN, or wired only.

One description, written two ways: netplan v2 for cloud-init's ``network-config``
(Raspberry Pi OS Trixie: the wired port and Wi-Fi) and NetworkManager keyfiles,
which the first boot installs (Wi-Fi on Bookworm; the 4G modem on both: netplan's
``modems`` is beyond what cloud-init parses). Both releases let NetworkManager
run the links.
"""

from __future__ import annotations

import dataclasses
import re
import uuid

#: Vietnam's regulatory domain: which Wi-Fi channels and powers the radio may use.
COUNTRY = "VN"
_HEX_PSK = re.compile(r"[0-9a-fA-F]{64}")
_APN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,99}")


@dataclasses.dataclass(frozen=True)
class Network:
    ssid: str | None = None
    psk: str | None = None  # WPA2 passphrase (8-63 characters) or 64 hex digits
    apn: str | None = None  # a 4G modem's access point, e.g. "v-internet" (Viettel)
    country: str = COUNTRY

    def __post_init__(self) -> None:
        if self.ssid is not None:
            if not 1 <= len(self.ssid.encode()) <= 32 or "\n" in self.ssid:
                raise ValueError(f"Wi-Fi SSID {self.ssid[:40]!r}: expected 1-32 bytes on "
                                 "one line")
            if self.psk is None:
                raise ValueError(f"Wi-Fi {self.ssid!r}: give its key (--wifi-key); open "
                                 "networks are not supported")
        if self.psk is not None:
            if self.ssid is None:
                raise ValueError("a Wi-Fi key without an SSID (--wifi-ssid)")
            if not (8 <= len(self.psk) <= 63 and self.psk.isprintable()
                    or _HEX_PSK.fullmatch(self.psk)):
                raise ValueError("Wi-Fi key: expected a WPA2 passphrase of 8-63 printable "
                                 "characters or 64 hex digits")
        if self.apn is not None and not _APN.fullmatch(self.apn):
            raise ValueError(f"APN {self.apn[:40]!r}: expected letters, digits, '.', '-'")
        if not re.fullmatch(r"[A-Z]{2}", self.country):
            raise ValueError(f"Wi-Fi country {self.country!r}: expected two capital letters")

    @property
    def secrets(self) -> list[str]:
        return [self.psk] if self.psk else []


def netplan(network: Network) -> dict:
    """cloud-init's ``network-config`` (netplan v2): the wired port always, Wi-Fi when
    given; every link optional, so boot never waits for a missing one."""
    config: dict = {"version": 2, "renderer": "NetworkManager",
                    "ethernets": {"eth0": {"dhcp4": True, "dhcp6": True, "optional": True}}}
    if network.ssid:
        config["wifis"] = {"wlan0": {
            "dhcp4": True, "dhcp6": True, "optional": True,
            "regulatory-domain": network.country,
            "access-points": {network.ssid: {"password": network.psk}}}}
    return {"network": config}


def keyfiles(network: Network, *, wifi: bool) -> dict[str, str]:
    """NetworkManager keyfiles (name -> text): the modem's, and Wi-Fi's if ``wifi``."""
    files = {}
    if network.ssid and wifi:
        files["thanthien-wifi.nmconnection"] = "\n".join([
            "[connection]", "id=thanthien-wifi", f"uuid={uuid.uuid4()}", "type=wifi",
            "autoconnect=true", "", "[wifi]", "mode=infrastructure",
            f"ssid={_keyfile_escape(network.ssid)}", "", "[wifi-security]", "auth-alg=open",
            "key-mgmt=wpa-psk", f"psk={_keyfile_escape(network.psk or '')}", "",
            "[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""])
    if network.apn:
        files["thanthien-4g.nmconnection"] = "\n".join([
            "[connection]", "id=thanthien-4g", f"uuid={uuid.uuid4()}", "type=gsm",
            "autoconnect=true", "", "[gsm]", f"apn={network.apn}", "",
            "[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""])
    return files


def _keyfile_escape(value: str) -> str:
    """GKeyFile value escaping: backslash first, then leading space and line breaks."""
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    return "\\s" + value[1:] if value.startswith(" ") else value
