"""The technician's check on site: the diagnosis, the node's status page, the CLI.

Everything runs over real sockets on 127.0.0.1: the test broker (a real
Mosquitto, with TLS where a test needs it), the page's HTTP server, a closed
port, a TLS server with an expired certificate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import DEVICE_PASSWORD, node_config, wait_for, write_node_file
from controller.broker import BrokerConfig, Mosquitto, free_port, tls
from controller.fleet.registry import get_device
from node_runtime.config import MqttSettings, NodeConfig, config_from_dict
from node_runtime.diagnose import System, check_tls, check_wifi, diagnose, main
from node_runtime.errors import ConfigError
from node_runtime.node import Node
from node_runtime.status_page import StatusPage, node_status
from node_runtime.telemetry import SystemProbe

WRONG_PASSWORD = "not-the-device-password"


def get(port: int, path: str) -> tuple[int, str]:
    """GET from a page on the loopback: (status, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def failed(report) -> list[str]:
    return [c.name for c in report.checks if c.ok is False]


def check(report, name):
    return next(c for c in report.checks if c.name == name)


def page_settings() -> dict:
    return {"status_port": free_port(), "status_bind": "127.0.0.1"}


def test_connected_node_page_says_connected_in_html_and_json(make_node):
    node = make_node("kiosk-st1", **page_settings())
    wait_for(lambda: node.online)
    assert node.status_page is not None
    status, page = get(node.status_page.port, "/")
    assert status == 200
    assert '<html lang="vi">' in page and 'name="viewport"' in page and "<script" not in page
    assert "Đã kết nối" in page and "Connected" in page and "kiosk-st1" in page
    assert 'class="verdict good"' in page
    status, text = get(node.status_page.port, "/status.json")
    body = json.loads(text)
    assert status == 200 and body["connected"] is True and body["ok"] is True
    assert body["verdict_vi"] == "Đã kết nối" and body["device_id"] == "kiosk-st1"
    assert body["outbox_depth"] == 0 and body["clock_synced"] is True
    assert {c["name"] for c in body["checks"]} == {
        "wifi", "network", "dns", "tcp", "tls", "credentials", "clock"}
    for shown in (page, text):
        assert DEVICE_PASSWORD not in shown
    assert get(node.status_page.port, "/nothing")[0] == 404


def test_wrong_password_is_named_on_the_page(tmp_path, broker):
    broker.add_device("kiosk-st2")
    config = node_config(tmp_path, broker, "kiosk-st2", **page_settings())
    config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt,
                                                                  password=WRONG_PASSWORD))
    with Node(config) as node:
        node.start()
        wait_for(lambda: node.session.last_refusal)
        assert node.status_page is not None
        text = get(node.status_page.port, "/status.json")[1]
        page = get(node.status_page.port, "/")[1]
    body = json.loads(text)
    assert body["connected"] is False and body["ok"] is False
    assert [c["name"] for c in body["checks"] if c["ok"] is False] == ["credentials"]
    assert body["verdict_vi"].startswith("Chưa kết nối: Sai mật khẩu thiết bị")
    assert "device import --replace kiosk-st2.card.json" in body["verdict_vi"]
    assert 'class="verdict bad"' in page
    for shown in (page, text):
        assert WRONG_PASSWORD not in shown and DEVICE_PASSWORD not in shown


def test_wrong_password_found_by_asking_the_broker(tmp_path, broker):
    """Without a running node (the CLI) the check logs in once to learn the CONNACK."""
    broker.add_device("kiosk-st3")
    config = node_config(tmp_path, broker, "kiosk-st3")
    config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt,
                                                                  password=WRONG_PASSWORD))
    report = diagnose(config)
    assert failed(report) == ["credentials"] and not report.connected
    assert "Bad user name or password" in check(report, "credentials").detail \
        or "Not authorized" in check(report, "credentials").detail


def test_closed_broker_port_is_a_tcp_failure(tmp_path, broker):
    config = node_config(tmp_path, broker, "kiosk-st4")
    config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, port=free_port()))
    started = time.monotonic()
    report = diagnose(config)
    assert time.monotonic() - started < 5
    assert failed(report) == ["tcp"] and not report.ok
    assert "refused the connection" in report.verdict
    assert "từ chối kết nối" in report.verdict_vi
    assert check(report, "credentials").ok is None  # not asked once TCP failed


def test_unknown_broker_name_is_a_dns_failure(tmp_path, broker):
    # A default route through the loopback, so the network check passes on any machine.
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "lo\t00000000\t0100007F\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    config = node_config(tmp_path, broker, "kiosk-st5")
    config = dataclasses.replace(config, mqtt=dataclasses.replace(
        config.mqtt, host="nonexistent.invalid"))
    report = diagnose(config, system=System(probe=SystemProbe(proc=tmp_path / "proc")),
                      timeout=2)
    assert check(report, "network").ok is True
    assert failed(report) == ["dns"]
    assert "Không tìm được máy chủ nonexistent.invalid" in report.verdict_vi


@pytest.fixture
def tls_broker(tmp_path):
    """A Mosquitto speaking TLS with a certificate for 127.0.0.1 from a commune CA."""
    ca = tls.make_ca(tmp_path / "ca", "Xã thử nghiệm")
    cert = tls.issue_server_cert(ca, tmp_path / "ca", "broker", [], ["127.0.0.1"])
    config = BrokerConfig(tmp_path / "tls-broker", port=free_port(),
                          tls_cert=str(cert.cert_path), tls_key=str(cert.key_path))
    config.set_user("kiosk-st6", DEVICE_PASSWORD)
    process = Mosquitto(config)
    process.start()
    yield config, ca
    process.stop()


def tls_config(tmp_path, port: int, ca_path, host: str = "127.0.0.1") -> NodeConfig:
    return NodeConfig(device_id="kiosk-st6", role="kiosk", data_dir=tmp_path / "n6",
                      clock_check="always",
                      mqtt=MqttSettings(host=host, port=port, password=DEVICE_PASSWORD,
                                        tls_ca=str(ca_path)))


def test_tls_checks_against_the_configured_ca(tmp_path, tls_broker):
    config, ca = tls_broker
    good = diagnose(tls_config(tmp_path, config.port, ca.cert_path))
    assert good.ok and check(good, "tls").ok and check(good, "credentials").ok
    other = tls.make_ca(tmp_path / "other-ca", "Xã khác")
    report = diagnose(tls_config(tmp_path, config.port, other.cert_path))
    assert failed(report) == ["tls"] and not report.connected
    assert "not signed by the CA" in report.verdict and "chép lại tệp ca.crt" in report.verdict_vi


def test_tls_names_a_certificate_made_out_to_another_name(tmp_path, tls_broker):
    config, ca = tls_broker
    report = diagnose(tls_config(tmp_path, config.port, ca.cert_path, host="localhost"))
    assert failed(report) == ["tls"]
    assert "not made out to localhost" in report.verdict


def test_expired_certificate_points_at_the_clock(tmp_path):
    """verify_code 10 (expired): on a Pi that is most often a wrong clock."""
    ca = tls.make_ca(tmp_path / "ca", "Xã thử nghiệm")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    (tmp_path / "old.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "old.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "old.crt", tmp_path / "old.key")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refuses the certificate

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        sock = socket.create_connection(listener.getsockname(), timeout=2)
        result = check_tls(sock, "127.0.0.1", str(ca.cert_path), 2)
        thread.join(5)
    assert result.ok is False
    assert "expired" in result.detail and "clock is probably wrong" in result.detail
    assert "đồng hồ có thể sai" in result.detail_vi


def test_untrusted_clock_fails_the_clock_check(tmp_path, broker):
    broker.add_device("kiosk-st7")
    config = dataclasses.replace(node_config(tmp_path, broker, "kiosk-st7"),
                                 clock_check="never")
    report = diagnose(config)
    assert report.connected and not report.ok and failed(report) == ["clock"]
    assert report.verdict_vi.startswith("Đã kết nối, nhưng: Chưa đồng bộ")


def test_wifi_not_joined_is_named_and_unused_wifi_is_not(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "wireless").write_text(
        "Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n"
        " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
        " wlan0: 0000    0.  -256.  -256        0      0      0      0      0        0\n")
    system = System(probe=SystemProbe(proc=tmp_path), ssid_of=lambda name: None)
    assert check_wifi("wlan0", True, system).ok is False
    assert check_wifi(None, True, system).ok is False  # no route at all: Wi-Fi is why
    assert check_wifi("eth0", True, system).ok is None  # the cable carries the traffic
    joined = dataclasses.replace(system, ssid_of=lambda name: "UBND-Xa")
    wifi = check_wifi("wlan0", True, joined)
    assert wifi.ok is True and '"UBND-Xa"' in wifi.detail_vi


def test_page_makes_a_report_at_most_every_five_seconds(make_node):
    node = make_node("kiosk-st8")
    wait_for(lambda: node.online)
    made, now = [], [100.0]

    def snapshot() -> dict:
        made.append(1)
        return node_status(node)

    with StatusPage(snapshot, host="127.0.0.1", port=0, clock=lambda: now[0]) as page:
        page.start()
        assert get(page.port, "/")[0] == 200
        assert get(page.port, "/status.json")[0] == 200
        assert len(made) == 1
        now[0] += 4.9
        get(page.port, "/")
        assert len(made) == 1
        now[0] += 0.1
        get(page.port, "/")
        assert len(made) == 2


def test_page_cuts_off_a_client_that_sends_a_byte_at_a_time(make_node):
    node = make_node("kiosk-st9")
    with StatusPage(lambda: node_status(node), host="127.0.0.1", port=0, timeout=1) as page:
        page.start()
        slow = socket.create_connection(("127.0.0.1", page.port), timeout=5)
        started = time.monotonic()
        try:
            for byte in b"GET / HTTP/1.0\r\nX-Slow: " + b"a" * 100:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass  # cut off
        closed = slow.recv(1024) == b""
        slow.close()
        assert closed and time.monotonic() - started < 4
        # Then the next visitor is answered.
        assert get(page.port, "/status.json")[0] == 200


def test_page_port_in_use_leaves_the_node_running(make_node, caplog):
    caplog.set_level(logging.WARNING, logger="node_runtime.node")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        node = make_node("kiosk-st10", status_port=port, status_bind="127.0.0.1")
        wait_for(lambda: node.online)
        assert node.status_page is None
        assert "status page not served" in caplog.text


def test_telemetry_link_counts_reconnects(controller, make_node, broker):
    node = make_node("kiosk-st11", controller=controller)
    wait_for(lambda: node.online)
    assert node.telemetry()["link"] == {"reconnects": 0,
                                        "connected_at": node.link()["connected_at"]}
    broker.process.stop()
    wait_for(lambda: not node.online)
    broker.process.start()
    wait_for(lambda: node.online, timeout=15)
    link = node.telemetry()["link"]
    assert link["reconnects"] == 1 and link["last_disconnect"]["reason"]
    assert DEVICE_PASSWORD not in json.dumps(link)

    def stored_link():
        telemetry = get_device(controller.reader(), "kiosk-st11")["telemetry"] or {}
        return telemetry.get("link", {}).get("reconnects") == 1
    wait_for(stored_link)


def node_file(tmp_path, broker, device_id: str, **mqtt: str):
    """A provisioned node file with a trusted clock, optionally with ``[mqtt]`` changed."""
    path = write_node_file(tmp_path, broker, device_id)
    text = path.read_text().replace("[runtime]", '[runtime]\nclock_check = "always"')
    for key, value in mqtt.items():
        text = "\n".join(f"{key} = {value}" if line.startswith(f"{key} = ") else line
                         for line in text.splitlines()) + "\n"
    path.write_text(text)
    return path


def test_cli_exit_status_says_whether_the_device_can_connect(tmp_path, broker, capsys):
    broker.add_device("kiosk-st12")
    assert main(["--config", str(node_file(tmp_path, broker, "kiosk-st12"))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Đã kết nối\n  Connected") and "✔ Tài khoản thiết bị" in out
    closed = node_file(tmp_path, broker, "kiosk-st12", port=str(free_port()))
    assert main(["--config", str(closed), "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["connected"] is False and [c["name"] for c in body["checks"]
                                          if c["ok"] is False] == ["tcp"]
    wrong = node_file(tmp_path, broker, "kiosk-st12", password=f'"{WRONG_PASSWORD}"')
    assert main(["--config", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "✘ Tài khoản thiết bị" in out and WRONG_PASSWORD not in out
    (tmp_path / "broken.toml").write_text("[device\n")
    assert main(["--config", str(tmp_path / "broken.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "absent.toml")]) == 2


def test_status_page_settings_are_read_from_runtime_and_checked():
    device = {"device": {"id": "kiosk-st13", "role": "kiosk"}}
    assert config_from_dict(device).status_port == 8080
    config = config_from_dict({**device, "runtime": {"status_port": 0,
                                                     "status_bind": "127.0.0.1"}})
    assert (config.status_port, config.status_bind) == (0, "127.0.0.1")
    for runtime, words in [({"status_port": 70000}, "status_port 70000"),
                           ({"status_port": "8080"}, "status_port '8080'"),
                           ({"status_bind": "everywhere"}, "status_bind 'everywhere'")]:
        with pytest.raises(ConfigError, match=words):
            config_from_dict({**device, "runtime": runtime})
