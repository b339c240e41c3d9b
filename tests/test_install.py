"""Installing the office machine as docs/operations.md says: ``setup``, then the shipped
systemd units' own command lines, a device added, and a node talking TLS to it all; the
API answers over HTTPS only, its certificate checked against the commune CA.

The units' ``ExecStart=`` lines are run as written, with only the folders, the
loopback ports and the install prefix swapped for this run's, so a unit that
disagrees with what ``setup`` writes fails here rather than in a commune.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from conftest import wait_for
from controller.access.tokens import check_token
from controller.broker import CONTROLLER_USER, BrokerConfig, free_port, tls
from controller.db.connection import connect
from controller.errors import BrokerError
from node_runtime.config import load_config
from node_runtime.node import Node
from provisioning.identity import verify_password

ROOT = pathlib.Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
BIN = pathlib.Path(sys.executable).parent
CONTROLLER = str(BIN / "thanthien-controller")
ADMIN = "chu-tich"


@dataclasses.dataclass
class Install:
    """One office machine's folders and ports, in a test's temporary folder."""

    etc: pathlib.Path
    data: pathlib.Path
    mqtt_port: int
    http_port: int

    @property
    def ca(self) -> pathlib.Path:
        return self.etc / "tls" / "ca.crt"

    @property
    def api(self) -> str:
        return f"https://127.0.0.1:{self.http_port}/api/v1"

    def setup(self, *extra: str) -> str:
        """Run ``thanthien-controller setup`` for this install; its standard output."""
        done = subprocess.run(
            [CONTROLLER, "--log-level", "WARNING", "--data", str(self.data), "setup",
             "--etc", str(self.etc), "--mqtt-listen", "127.0.0.1",
             "--mqtt-port", str(self.mqtt_port), "--admin", ADMIN, *extra],
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def unit_command(self, unit: str) -> list[str]:
        """The unit's ExecStart, pointed at this install's folders, ports and venv."""
        line = exec_start(unit)
        for port, our_port in (("8883", self.mqtt_port), ("8443", self.http_port)):
            line = re.sub(rf"(?<![0-9]){port}(?![0-9])", str(our_port), line)
        for path, ours in (("/opt/thanthien/.venv/bin/", f"{BIN}/"),
                           ("/etc/thanthien", str(self.etc)),
                           ("/var/lib/thanthien", str(self.data)),
                           ("0.0.0.0", "127.0.0.1")):
            line = line.replace(path, ours)
        return shlex.split(line)

    def token(self) -> str:
        return (self.etc / "admin-token").read_text().strip()


def exec_start(unit: str) -> str:
    """The one ``ExecStart=`` of a shipped unit, its continuation lines joined."""
    text = (UNITS / unit).read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, f"{unit}: expected one ExecStart=, found {lines}"
    return lines[0].removeprefix("ExecStart=")


def service_env() -> dict[str, str]:
    """The test's environment without what systemd or a developer's shell might add."""
    env = dict(os.environ)
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "THANTHIEN_DATA", "THANTHIEN_MQTT_PASSWORD"):
        env.pop(name, None)
    return env


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def connack(port: int, password: str, ca: pathlib.Path | None) -> object | None:
    """The broker's CONNACK reason code for the controller's account, or None if none came."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"install-test-{time.time_ns()}")
    client.username_pw_set(CONTROLLER_USER, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
    codes: list[object] = []
    client.on_connect = lambda _c, _u, _f, code, _p: codes.append(code)
    try:
        client.connect("localhost", port, keepalive=5)
        deadline = time.monotonic() + 5
        while not codes and time.monotonic() < deadline:
            if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                break  # the broker closed the connection
    except (OSError, ssl.SSLError):
        pass
    finally:
        client.disconnect()
    return codes[0] if codes else None


@pytest.fixture
def install(tmp_path: pathlib.Path) -> Install:
    made = Install(tmp_path / "etc", tmp_path / "data", free_port(), free_port())
    made.setup()
    return made


@pytest.fixture
def broker_unit(install: Install, tmp_path: pathlib.Path):
    """Mosquitto started from thanthien-broker.service's ExecStart."""
    log = tmp_path / "broker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(install.unit_command("thanthien-broker.service"),
                                stdout=out, stderr=subprocess.STDOUT, env=service_env())
    try:
        wait_for(lambda: proc.poll() is not None or listening(install.mqtt_port))
        assert proc.poll() is None, log.read_text()
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def test_units_run_controller_and_a_node_over_tls(install, broker_unit, tmp_path):
    log = tmp_path / "controller.log"
    command = install.unit_command("thanthien-controller.service")
    with open(log, "wb") as out:
        controller = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                      env=service_env())
    try:
        try:
            wait_for(lambda: healthy(install, controller), timeout=30)
        except AssertionError:
            pytest.fail(f"no ok health with mqtt_connected in 30 s; the controller's log:\n"
                        f"{log.read_text()}")
        node_file = add_device(install, broker_unit, tmp_path, "kiosk-qa-01")
        config = load_config(node_file)
        node = Node(config)
        node.start()
        admin = {"Authorization": f"Bearer {install.token()}"}
        try:
            node.emit("rating", {"level": 4, "scale": 4})
            wait_for(lambda: node.outbox.depth == 0, timeout=30)
            ratings = requests.get(f"{install.api}/ratings", timeout=5, verify=install.ca,
                                   headers=admin).json()
            assert [(r["device"], r["level"], r["scale"]) for r in ratings] == [
                ("kiosk-qa-01", 4, 4)]
            # --broker-passwd: a device's broker credentials open the audio downloads.
            file_url = f"{install.api}/audio/files/{'0' * 64}"
            device = (config.device_id, config.mqtt.password or "")
            assert requests.get(file_url, auth=device, timeout=5,
                                verify=install.ca).status_code == 404
            wrong = (config.device_id, "not-the-password")
            assert requests.get(file_url, auth=wrong, timeout=5,
                                verify=install.ca).status_code == 401
            # Revoked through the API: the controller removes the account and reloads
            # the broker unit's Mosquitto (its pid file), which closes the connection.
            revoked = requests.post(f"{install.api}/devices/kiosk-qa-01/revoke", timeout=10,
                                    verify=install.ca, headers=admin)
            assert revoked.status_code == 200, revoked.text
            assert revoked.json()["broker_reloaded"] is True
            wait_for(lambda: not node.session.is_connected.is_set(), timeout=5)
            assert requests.get(file_url, auth=device, timeout=5,
                                verify=install.ca).status_code == 401
        finally:
            node.close()
        # HTTPS only: plain HTTP to the port gets no answer, and the certificate names
        # localhost as well as 127.0.0.1 (what setup's closing curl line uses).
        with pytest.raises(requests.ConnectionError):
            requests.get(install.api.replace("https://", "http://") + "/health", timeout=5)
        local = install.api.replace("127.0.0.1", "localhost")
        assert requests.get(f"{local}/health", timeout=5, verify=install.ca).ok
        controller.send_signal(signal.SIGTERM)
        assert controller.wait(10) == 0, log.read_text()
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()


def healthy(install: Install, controller: subprocess.Popen) -> dict | None:
    """The health body once it is ok and connected; fails fast if the controller died."""
    assert controller.poll() is None, f"the controller exited with {controller.returncode}"
    try:
        body = requests.get(f"{install.api}/health", timeout=2, verify=install.ca).json()
    except requests.RequestException:
        return None
    return body if body["status"] == "ok" and body["mqtt_connected"] else None


def add_device(install: Install, broker: subprocess.Popen, tmp_path: pathlib.Path,
               device_id: str) -> pathlib.Path:
    """``device add`` as the docs say (with the CA the device will hold, here the office's
    own copy), then the broker reloaded; returns the node file, given a fast reconnect and
    no clock check for the test."""
    node_file = tmp_path / f"{device_id}.toml"
    subprocess.run([CONTROLLER, "--log-level", "WARNING", "--data", str(install.data), "device",
                    "add", device_id, "--role", "kiosk", "--broker-dir",
                    str(install.etc / "broker"), "--mqtt-host", "localhost", "--mqtt-port",
                    str(install.mqtt_port), "--mqtt-tls-ca", str(install.ca),
                    "--node-data-dir", str(tmp_path / device_id),
                    "--out", str(node_file)], check=True, capture_output=True, timeout=60)
    broker.send_signal(signal.SIGHUP)
    text = node_file.read_text()
    assert f'tls_ca = "{install.ca}"' in text, text
    edited = text.replace("[mqtt]\n", "[mqtt]\nreconnect_min = 0.2\nreconnect_max = 1.0\n").replace(
        "[runtime]\n", '[runtime]\nclock_check = "always"\nresend_after = 3.0\n')
    assert edited.count("tls_ca") == 1 and edited.count("clock_check") == 1, text
    node_file.write_text(edited)
    return node_file


def test_broker_unit_refuses_plain_mqtt_on_its_tls_port(install, broker_unit):
    password = (install.etc / "broker" / "controller-password").read_text().strip()
    assert connack(install.mqtt_port, password, install.ca) == 0
    assert connack(install.mqtt_port, password, None) is None


def test_setup_run_again_keeps_ca_accounts_and_admin_token(tmp_path):
    install = Install(tmp_path / "etc", tmp_path / "data", free_port(), free_port())
    first = install.setup("--host-name", "xa-tan-an.local")
    fingerprint = tls.load_ca(install.etc / "tls").fingerprint
    token = install.token()
    password = (install.etc / "broker" / "controller-password").read_text()
    assert token in first and "Authorization: Bearer" in first

    second = install.setup("--host-name", "xa-tan-an.local", "--address", "192.168.1.10")

    assert tls.load_ca(install.etc / "tls").fingerprint == fingerprint
    assert f"kept     {install.ca}" in second and token not in second
    assert install.token() == token
    db = connect(install.data / "controller.db")
    try:
        assert check_token(db, f"Bearer {token}").name == ADMIN
        assert check_token(db, f"Bearer {token}").role == "admin"
    finally:
        db.close()
    assert (install.etc / "broker" / "controller-password").read_text() == password
    users = BrokerConfig(install.etc / "broker").users()
    assert verify_password(password.strip(), users[CONTROLLER_USER])
    # The new address reissued the broker's and the controller's HTTPS certificates,
    # still signed by the same CA, with the same names.
    assert f"created  {install.etc / 'tls' / 'controller.crt'}" in first
    assert "controller's HTTPS certificate, reissued: the names changed" in second
    for server in ("broker", "controller"):
        names, addresses = tls.certificate_names(install.etc / "tls" / f"{server}.crt")
        assert "xa-tan-an.local" in names and "localhost" in names
        assert {"127.0.0.1", "192.168.1.10"} <= set(addresses)
    assert tls.certificate_names(install.etc / "tls" / "broker.crt") == tls.certificate_names(
        install.etc / "tls" / "controller.crt")
    for secret in ("tls/ca.key", "tls/broker.key", "tls/controller.key",
                   "broker/controller-password", "admin-token"):
        assert (install.etc / secret).stat().st_mode & 0o777 == 0o600, secret


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_setup_as_root_gives_service_files_to_the_user_and_keeps_the_ca_key(tmp_path):
    install = Install(tmp_path / "etc", tmp_path / "data", free_port(), free_port())
    install.setup("--user", "nobody")
    nobody = 65534
    conf = (install.etc / "broker" / "mosquitto.conf").read_text()
    assert "\nuser nobody\n" in conf
    for path in ("broker/passwd", "broker/controller-password", "tls/broker.key",
                 "tls/controller.key"):
        assert (install.etc / path).stat().st_uid == nobody, path
    assert (install.data / "controller.db").stat().st_uid == nobody
    assert (install.etc / "tls" / "ca.key").stat().st_uid == 0


def test_ca_is_never_replaced(tmp_path):
    ca = tls.make_ca(tmp_path, "thanthien test CA")
    with pytest.raises(BrokerError, match="refusing to replace"):
        tls.make_ca(tmp_path, "another CA")
    assert tls.load_ca(tmp_path).fingerprint == ca.fingerprint


def test_server_cert_kept_until_its_names_change_or_its_end_nears(tmp_path):
    ca = tls.make_ca(tmp_path / "ca", "thanthien test CA")
    issue = lambda names, **kw: tls.issue_server_cert(  # noqa: E731
        ca, tmp_path, "broker", names, ["127.0.0.1"], **kw)
    assert issue(["localhost"]).issued
    assert not issue(["LOCALHOST"]).issued
    assert issue(["localhost", "xa-tan-an.local"]).reason == "reissued: the names changed"
    assert issue(["localhost"], days=10).issued
    assert "expire" in (issue(["localhost"]).reason or "")
    other = tls.make_ca(tmp_path / "other", "another CA")
    again = tls.issue_server_cert(other, tmp_path, "broker", ["localhost"], ["127.0.0.1"])
    assert again.reason == "reissued: not signed by this CA"


def test_bad_host_name_and_address_are_refused_naming_them(tmp_path):
    ca = tls.make_ca(tmp_path, "thanthien test CA")
    with pytest.raises(BrokerError, match="'Xã Tân An'"):
        tls.issue_server_cert(ca, tmp_path, "broker", ["Xã Tân An"], [])
    with pytest.raises(BrokerError, match="'192.168.1'"):
        tls.issue_server_cert(ca, tmp_path, "broker", ["localhost"], ["192.168.1"])
