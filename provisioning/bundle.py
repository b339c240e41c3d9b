"""A device's boot-partition bundle: what goes on its SD card, and what stays behind.

On the card's FAT boot partition (``boot/``, or a mounted card with ``--boot``):

- Trixie: cloud-init's ``user-data``, ``network-config``, ``meta-data``;
  Bookworm: ``firstrun.sh``, run once through ``cmdline.txt``;
- ``thanthien/``: ``firstboot.sh`` (both releases run it), ``device.env`` (the
  device's id, role and clock servers: nothing secret), ``node.toml`` (its
  password or enrolment token), ``camera.key`` (a camera's signing key),
  ``ca.crt``, ``network/`` (NetworkManager keyfiles), ``wheels/`` (the
  wheelhouse) and ``systemd/`` (the units).

Beside it, for the technician: ``<id>.card.json`` for the controller (no secret;
not for a device that enrols by claim) and the label (``<id>-label.png/.pdf``).
The first boot moves every secret off the card (see ``boot/firstboot.sh``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shlex
import shutil

from provisioning import cloud_init, wheelhouse
from provisioning.card import DeviceCard, check_device, now_iso
from provisioning.identity import DeviceIdentity, new_camera_key, new_identity
from provisioning.network import Network, keyfiles
from provisioning.node_file import node_file_text

HERE = pathlib.Path(__file__).resolve().parent
NODE_UNIT = HERE.parent / "deploy" / "systemd" / "thanthien-node@.service"
RELEASES = ("trixie", "bookworm")
NTP_SERVERS = ("0.vn.pool.ntp.org", "1.asia.pool.ntp.org", "2.asia.pool.ntp.org")
CARD_CA = "/etc/thanthien/ca.crt"  # where the first boot puts the CA
DATA_DIR = "/var/lib/thanthien"
FIRSTRUN = (f" systemd.run={cloud_init.BOOT_MOUNT}/firstrun.sh "
            "systemd.run_success_action=reboot systemd.unit=kernel-command-line.target")


@dataclasses.dataclass(frozen=True)
class Site:
    """What every device of a commune shares."""

    mqtt_host: str
    mqtt_port: int = 8883
    controller_url: str | None = None
    ca_file: pathlib.Path | None = None
    network: Network = Network()
    release: str = "trixie"
    ntp_servers: tuple[str, ...] = NTP_SERVERS
    admin_user: str | None = "kythuat"
    ssh_keys: tuple[str, ...] = ()
    #: False: the broker listens in plain MQTT (a demo, a broker on the device's own
    #: machine); the CA then checks only the controller's HTTPS.
    mqtt_tls: bool = True

    def __post_init__(self) -> None:
        if self.release not in RELEASES:
            raise ValueError(f"release {self.release!r}: expected one of {', '.join(RELEASES)}")
        if not self.mqtt_host or any(c.isspace() for c in self.mqtt_host):
            raise ValueError(f"mqtt host {self.mqtt_host!r}: expected a host name or address")
        if not 0 < self.mqtt_port < 65536:
            raise ValueError(f"mqtt port {self.mqtt_port}: expected 1-65535")
        if self.controller_url and not self.controller_url.startswith(("https://", "http://")):
            raise ValueError(f"controller URL {self.controller_url!r}: expected https://...")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"CA certificate {self.ca_file}: no such file (copy the "
                             "controller's /etc/thanthien/tls/ca.crt)")
        for key in self.ssh_keys:
            if not key.startswith(("ssh-", "ecdsa-", "sk-")) or "\n" in key:
                raise ValueError(f"SSH key {key[:30]!r}...: expected one public key line")


@dataclasses.dataclass(frozen=True)
class Device:
    device_id: str
    role: str
    hamlet: str | None = None
    desk: str | None = None
    label: str | None = None


@dataclasses.dataclass(frozen=True)
class Bundle:
    device: Device
    boot: pathlib.Path
    identity: DeviceIdentity
    card: DeviceCard | None  # None: the device enrols by claim
    card_file: pathlib.Path | None
    secrets: tuple[str, ...]  # every secret written on the card, to check they leave it


def check(device: Device) -> None:
    """Validate ``device`` as its card would (ValueError naming the field)."""
    check_device(device.device_id, device.role, hamlet=device.hamlet, desk=device.desk,
                 label=device.label)


def write_bundle(device: Device, site: Site, out: pathlib.Path, *, wheels: pathlib.Path,
                 boot: pathlib.Path | None = None, enrol_token: str | None = None,
                 identity: DeviceIdentity | None = None) -> Bundle:
    """Write the card's files for ``device`` (``wheels``: its role's prepared wheelhouse)."""
    check(device)
    if enrol_token and not site.controller_url:
        raise ValueError("a device that enrols by claim needs the controller's address "
                         "(--controller-url)")
    stamp = wheelhouse.stamp_of(wheels, device.role)
    identity = identity or new_identity(device.device_id, device.role, hamlet=device.hamlet,
                                        label=device.label)
    boot = boot or out / "boot"
    if site.release == "bookworm" and not (boot / "cmdline.txt").is_file():
        raise ValueError(f"{boot}: no cmdline.txt; a Bookworm bundle is written onto the "
                         "card's boot partition itself (--boot /media/$USER/bootfs)")
    card_dir = boot / "thanthien"
    if card_dir.exists():
        shutil.rmtree(card_dir)
    (card_dir / "network").mkdir(parents=True)
    secrets = [enrol_token or identity.password]

    public_key = None
    if device.role == "camera" and not enrol_token:
        pem, public_key = new_camera_key()
        _private(card_dir / "camera.key", pem)
        secrets.append(pem.decode().splitlines()[1])
    settings: dict[str, str] = {}
    if device.role == "speaker" and site.controller_url:
        settings["controller_url"] = site.controller_url
    if site.ca_file and not site.mqtt_tls and device.role in ("speaker", "kiosk"):
        settings["controller_ca"] = CARD_CA
    enrol = {"token": enrol_token, "controller_url": site.controller_url} if enrol_token \
        else None
    _private(card_dir / "node.toml", node_file_text(
        identity, mqtt_host=site.mqtt_host, mqtt_port=site.mqtt_port, data_dir=DATA_DIR,
        tls_ca=CARD_CA if site.ca_file and site.mqtt_tls else None, role_settings=settings,
        enrol=enrol).encode())
    if site.ca_file:
        shutil.copyfile(site.ca_file, card_dir / "ca.crt")
    for name, text in keyfiles(site.network, wifi=site.release == "bookworm").items():
        _private(card_dir / "network" / name, text.encode())
    secrets += site.network.secrets

    env = {"DEVICE_ID": device.device_id, "ROLE": device.role, "TIMEZONE": cloud_init.TIMEZONE,
           "NTP_SERVERS": " ".join(site.ntp_servers), "WIFI_COUNTRY": site.network.country,
           "APT_PACKAGES": " ".join(stamp["apt"]), "PYTHON_VERSION": stamp["python"],
           "ADMIN_USER": site.admin_user or ""}
    (card_dir / "device.env").write_text(
        "# thanthien: this device, for firstboot.sh (nothing secret)\n"
        + "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    for script in ("firstboot.sh", "apt-retry.sh"):
        shutil.copyfile(HERE / "boot" / script, card_dir / script)
    (card_dir / "systemd").mkdir()
    shutil.copyfile(NODE_UNIT, card_dir / "systemd" / NODE_UNIT.name)
    shutil.copyfile(HERE / "boot" / "thanthien-apt.service",
                    card_dir / "systemd" / "thanthien-apt.service")
    shutil.copytree(wheels, card_dir / "wheels")

    if site.release == "trixie":
        (boot / "user-data").write_text(cloud_init.user_data(
            device.device_id, admin_user=site.admin_user, ssh_keys=list(site.ssh_keys)))
        if site.network.ssid:
            _private(boot / "network-config", cloud_init.network_config(site.network).encode())
        else:
            (boot / "network-config").write_text(cloud_init.network_config(site.network))
        (boot / "meta-data").write_text(cloud_init.meta_data(device.device_id))
    else:
        shutil.copyfile(HERE / "boot" / "firstrun.sh", boot / "firstrun.sh")
        if site.ssh_keys:
            (card_dir / "authorized_keys").write_text("\n".join(site.ssh_keys) + "\n")
        cmdline = (boot / "cmdline.txt").read_text().strip()
        if "systemd.run=" not in cmdline:
            (boot / "cmdline.txt").write_text(cmdline + FIRSTRUN + "\n")

    card = card_file = None
    if not enrol_token:
        card = DeviceCard(device.device_id, device.role, identity.password_hash,
                          hamlet=device.hamlet, desk=device.desk, label=device.label,
                          camera_key=public_key, created=now_iso())
        out.mkdir(parents=True, exist_ok=True)
        card_file = out / f"{device.device_id}.card.json"
        card_file.write_text(card.to_json())
    return Bundle(device, boot, identity, card, card_file, tuple(secrets))


def _private(path: pathlib.Path, data: bytes) -> None:
    """A secret's file on the technician's machine: 0600 (FAT ignores it on the card)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
