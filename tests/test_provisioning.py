"""A device's card, as a technician makes it offline: cloud-init's files pass cloud-init's
own checks, the first boot (run against a fake root and boot folder) installs and enables
the node from the card's wheelhouse and leaves no secret on the boot partition, batches
from a CSV, bad input named."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from node_runtime.config import load_config
from provisioning import wheelhouse
from provisioning.batch import read_devices
from provisioning.bundle import Device, Site, write_bundle
from provisioning.card import DeviceCard
from provisioning.cli import main as provision
from provisioning.identity import verify_password
from provisioning.network import Network

REPO = pathlib.Path(__file__).resolve().parent.parent
HOST_WHEELS = REPO / ".cache" / "wheelhouse" / f"speaker-{wheelhouse.Target.host().name}"
WIFI = Network(ssid="UBND Tân An", psk="mat-khau-wifi-2026", apn="v-internet")
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def speaker_wheels() -> pathlib.Path:
    assert (HOST_WHEELS / "wheelhouse.json").is_file(), \
        f"{HOST_WHEELS}: no wheelhouse for this machine; 'make setup' prepares it"
    return HOST_WHEELS


def _site(release: str = "trixie", **kw) -> Site:
    return Site("xa-tan-an.local", controller_url="https://xa-tan-an.local:8443",
                network=WIFI, release=release, **kw)


def _everything(folder: pathlib.Path) -> bytes:
    """Every byte of every file under ``folder`` but the wheels (what a card reader sees)."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*"))
                    if p.is_file() and "wheels" not in p.parts)


def _first_boot(root: pathlib.Path, boot: pathlib.Path, script: str = "thanthien/firstboot.sh"
                ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "THANTHIEN_ROOT": str(root), "THANTHIEN_BOOT": str(boot),
           "THANTHIEN_PYTHON": SYSTEM_PYTHON, "THANTHIEN_APT_GET": "false"}
    return subprocess.run(["sh", str(boot / script)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_user_data_passes_cloud_inits_schema_and_network_config_its_parser(tmp_path,
                                                                             speaker_wheels):
    ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHt7 kythuat@laptop"
    bundle = write_bundle(Device("loa-an-binh-1", "speaker", hamlet="Ấp An Bình"),
                          _site(ssh_keys=(ssh,)), tmp_path, wheels=speaker_wheels)
    result = subprocess.run(["cloud-init", "schema", "--config-file",
                             str(bundle.boot / "user-data")], capture_output=True, text=True)
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stderr
    # cloud-init's own network-state parser reads network-config (netplan v2).
    check = ("import sys, yaml\nfrom cloudinit.net.network_state import parse_net_config_data\n"
             "ns = parse_net_config_data(yaml.safe_load(open(sys.argv[1]))['network'])\n"
             "print(sorted(i['name'] for i in ns.iter_interfaces()))")
    parsed = subprocess.run([SYSTEM_PYTHON, "-c", check, str(bundle.boot / "network-config")],
                            capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    assert "eth0" in parsed.stdout  # Wi-Fi it passes through to netplan as written:
    wifi = _yaml(bundle.boot / "network-config")["network"]["wifis"]
    assert wifi["wlan0"]["access-points"] == {WIFI.ssid: {"password": WIFI.psk}}
    assert wifi["wlan0"]["regulatory-domain"] == "VN"
    user_data = _yaml(bundle.boot / "user-data")
    assert user_data["hostname"] == "loa-an-binh-1"
    assert user_data["timezone"] == "Asia/Ho_Chi_Minh"
    assert user_data["users"][0]["ssh_authorized_keys"] == [ssh]
    assert user_data["runcmd"] == [["sh", "/boot/firmware/thanthien/firstboot.sh"]]
    assert WIFI.psk.encode() not in (bundle.boot / "user-data").read_bytes()


def test_first_boot_installs_and_enables_the_node_and_leaves_no_secret_on_the_card(
        tmp_path, speaker_wheels):
    bundle = write_bundle(Device("loa-an-binh-1", "speaker", hamlet="Ấp An Bình"),
                          _site(ca_file=_ca(tmp_path)), tmp_path / "out", wheels=speaker_wheels)
    before = _everything(bundle.boot)
    assert all(s.encode() in before for s in bundle.secrets)  # the card held them
    root = tmp_path / "root"
    result = _first_boot(root, bundle.boot)
    log = (root / "var/log/thanthien-firstboot.log").read_text()
    assert result.returncode == 0, log

    # The node's file, the CA, the clock servers, the units: in the root, enabled.
    node_file = root / "etc/thanthien/node.toml"
    assert node_file.stat().st_mode & 0o777 == 0o600
    config = load_config(node_file)
    assert (config.device_id, config.role) == ("loa-an-binh-1", "speaker")
    assert config.mqtt.tls_ca == "/etc/thanthien/ca.crt"
    assert verify_password(config.mqtt.password, bundle.card.password_hash)
    assert config.role_settings["controller_url"] == "https://xa-tan-an.local:8443"
    assert (root / "etc/thanthien/ca.crt").read_bytes() == _ca(tmp_path).read_bytes()
    assert "NTP=0.vn.pool.ntp.org" in (
        root / "etc/systemd/timesyncd.conf.d/thanthien.conf").read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "thanthien-node@speaker.service") == \
        "/etc/systemd/system/thanthien-node@.service"
    assert (wants / "thanthien-apt.service").is_symlink()
    unit = (root / "etc/systemd/system/thanthien-node@.service").read_text()
    assert "ExecStart=/opt/thanthien/.venv/bin/thanthien-%i" in unit
    # The node's software, installed from the card's wheels with no index, runs.
    assert subprocess.run([str(root / "opt/thanthien/.venv/bin/thanthien-speaker"), "--help"],
                          capture_output=True).returncode == 0
    # Offline, apt's packages wait for thanthien-apt.service.
    assert (root / "etc/thanthien/apt-pending").read_text().split() == [
        "python3-pyaudio", "python3-lgpio"]
    # The modem's link is NetworkManager's; cloud-init will not read network-config again.
    assert (root / "etc/NetworkManager/system-connections/thanthien-4g.nmconnection").stat(
        ).st_mode & 0o777 == 0o600
    assert "config: disabled" in (root / "etc/cloud/cloud.cfg.d/99-thanthien.cfg").read_text()

    after = _everything(bundle.boot)
    leaked = [s for s in bundle.secrets if s.encode() in after]
    assert leaked == [], "secrets left on the boot partition"
    assert not (bundle.boot / "thanthien/node.toml").exists()
    assert (bundle.boot / "user-data").exists() and (bundle.boot / "meta-data").exists()
    # Run again (a second boot, a technician retrying): nothing breaks, nothing returns.
    assert _first_boot(root, bundle.boot).returncode == 0
    assert load_config(node_file).mqtt.password == config.mqtt.password


def test_bookworm_firstrun_sets_the_device_up_once_and_cleans_cmdline(tmp_path, speaker_wheels):
    boot, root = tmp_path / "bootfs", tmp_path / "root"
    boot.mkdir()
    (boot / "cmdline.txt").write_text("console=serial0,115200 root=PARTUUID=abc rootwait\n")
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("raspberrypi\n")
    (root / "etc/hosts").write_text("127.0.1.1\traspberrypi\n")
    bundle = write_bundle(Device("loa-an-binh-2", "speaker", hamlet="Ấp An Bình"),
                          _site("bookworm"), tmp_path / "out", boot=boot, wheels=speaker_wheels)
    assert "systemd.run=/boot/firmware/firstrun.sh" in (boot / "cmdline.txt").read_text()
    assert WIFI.psk.encode() not in (boot / "firstrun.sh").read_bytes()
    result = _first_boot(root, boot, "firstrun.sh")
    assert result.returncode == 0, (root / "var/log/thanthien-firstboot.log").read_text()
    assert (root / "etc/hostname").read_text().strip() == "loa-an-binh-2"
    assert "loa-an-binh-2" in (root / "etc/hosts").read_text()
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Asia/Ho_Chi_Minh"
    wifi = root / "etc/NetworkManager/system-connections/thanthien-wifi.nmconnection"
    assert f"ssid={WIFI.ssid}" in wifi.read_text() and wifi.stat().st_mode & 0o777 == 0o600
    assert (root / "etc/systemd/system/multi-user.target.wants/"
            "thanthien-node@speaker.service").is_symlink()
    assert (boot / "cmdline.txt").read_text() == \
        "console=serial0,115200 root=PARTUUID=abc rootwait\n"
    assert not (boot / "firstrun.sh").exists()
    assert [s for s in bundle.secrets if s.encode() in _everything(boot)] == []


def test_camera_card_carries_its_public_key_and_first_boot_keeps_the_private_one(
        tmp_path, speaker_wheels, monkeypatch):
    wheels = tmp_path / "camera-wheels"
    import shutil
    shutil.copytree(speaker_wheels, wheels)
    stamp = (wheels / "wheelhouse.json").read_text().replace('"speaker"', '"camera"')
    (wheels / "wheelhouse.json").write_text(stamp)
    bundle = write_bundle(Device("cam-quay-1", "camera", desk="quay-1"), _site(),
                          tmp_path / "out", wheels=wheels)
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key((bundle.boot / "thanthien/camera.key").read_bytes(),
                                             None)
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw).hex()
    assert bundle.card.camera_key == public and bundle.card.desk == "quay-1"
    card = DeviceCard.from_json(bundle.card_file.read_text())
    assert card == bundle.card and "PRIVATE" not in bundle.card_file.read_text()


def test_a_batch_of_fifty_from_csv(tmp_path, speaker_wheels):
    rows = ["id,role,hamlet,desk,label"] + [
        f"loa-ap-{n},speaker,Ấp {n % 7},,Loa số {n}" for n in range(50)]
    csv_file = tmp_path / "thiet-bi.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert provision(["batch", str(csv_file), "--mqtt-host", "xa-tan-an.local",
                      "--controller-url", "https://xa-tan-an.local:8443", "--wifi-ssid",
                      "UBND", "--wifi-key", "mat-khau-wifi-2026", "--host-wheels",
                      "--wheels-cache", str(REPO / ".cache" / "wheelhouse"),
                      "--out", str(out)]) == 0
    cards = sorted(out.glob("*/*.card.json"))
    assert len(cards) == 50
    parsed = [DeviceCard.from_json(c.read_text()) for c in cards]
    assert len({c.password_hash for c in parsed}) == 50  # never shared
    assert {c.hamlet for c in parsed} == {f"Ấp {n}" for n in range(7)}
    assert all((out / c.device_id / f"{c.device_id}-label.png").is_file() for c in parsed)
    assert all((out / c.device_id / "boot/user-data").is_file() for c in parsed)


@pytest.mark.parametrize(("csv_text", "words"), [
    ("id,role\nloa-1,speaker\nloa-1,speaker\n", "line 3: id 'loa-1' is already on line 2"),
    ("id,role\nLoa 1,speaker\n", "line 2"),
    ("id,role\nloa-1,radio\n", "line 2: card loa-1: role 'radio'"),
    ("id,role\nloa-1,speaker,,quay-1\n", "line 2: more cells than the header's 2 columns"),
    ("id,role,desk\nloa-1,speaker,quay-1\n", "line 2: card loa-1: a speaker has a hamlet"),
    ("id,role,colour\nloa-1,speaker,red\n", "unknown column(s) colour"),
    ("name,role\nloa-1,speaker\n", "header lacks id"),
    ("id,role\n", "no devices"),
])
def test_a_bad_csv_is_refused_naming_the_line_and_nothing_is_written(tmp_path, csv_text, words):
    with pytest.raises(ValueError) as exc:
        read_devices(csv_text, source="thiet-bi.csv")
    assert words in str(exc.value)
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(csv_text)
    result = subprocess.run([sys.executable, "-m", "provisioning.cli", "batch", str(csv_file),
                             "--mqtt-host", "h", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and words in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "words"), [
    (["--wifi-ssid", "UBND", "--wifi-key", "short"], "Wi-Fi key"),
    (["--wifi-key", "mat-khau-wifi"], "without an SSID"),
    (["--apn", "bad apn!"], "APN"),
    (["--ca", "/nonexistent/ca.crt"], "CA certificate"),
    (["--os", "bookworm"], "cmdline.txt"),
])
def test_bad_site_settings_are_refused_naming_them(tmp_path, args, words):
    result = subprocess.run([sys.executable, "-m", "provisioning.cli", "bundle", "loa-1",
                             "--role", "speaker", "--mqtt-host", "h", "--host-wheels",
                             "--wheels-cache", str(REPO / ".cache" / "wheelhouse"),
                             "--out", str(tmp_path / "out"), *args],
                            capture_output=True, text=True)
    assert result.returncode == 2 and words in result.stderr, result.stderr


def _yaml(path: pathlib.Path):
    """YAML read as cloud-init reads it (Debian's python3-yaml, cloud-init's own)."""
    import json
    script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    return json.loads(subprocess.run([SYSTEM_PYTHON, "-c", script, str(path)], check=True,
                                     capture_output=True, text=True).stdout)


def _ca(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "ca.crt"
    if not path.exists():
        path.write_text("-----BEGIN CERTIFICATE-----\nMIIB (the commune CA, public)\n"
                        "-----END CERTIFICATE-----\n")
    return path
