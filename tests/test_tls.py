"""HTTPS for the controller's API: the certificate checked against the commune CA, no
plain HTTP on its port, half-open TLS clients dropped in bounded time, speakers that
download over HTTPS and never send their password in clear, kiosks that fetch photos
and upload screenshots over HTTPS (never a screenshot in clear), and a Secure session
cookie.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from speaker_support import SpeakerTestbed, new_device, noise_wav, soon

from conftest import BrokerFixture, node_config, wait_for
from controller.access import users
from controller.access.roles import LEADER
from controller.broker import free_port, tls
from controller.cli import main as controller_main
from controller.service import Controller
from node_runtime.https import client_context, password_in_clear
from node_runtime.node import Node
from speaker_node.cache import AudioCache
from speaker_node.cli import build
from speaker_node.errors import CacheError

CONTROLLER = str(pathlib.Path(sys.executable).parent / "thanthien-controller")
#: Short, so that the tests of half-open clients wait little; a TLS handshake on the
#: loopback takes milliseconds.
HEADER_TIMEOUT = 1.0


@dataclasses.dataclass
class Pki:
    """A commune CA with the controller's certificate, and a CA that signed nothing."""

    ca: tls.CertificateAuthority
    server: tls.ServerCertificate
    other: tls.CertificateAuthority


@pytest.fixture
def pki(tmp_path: pathlib.Path) -> Pki:
    ca = tls.make_ca(tmp_path / "tls", "thanthien test CA")
    server = tls.issue_server_cert(ca, tmp_path / "tls", "controller", ["localhost"],
                                   ["127.0.0.1", "::1"])
    return Pki(ca, server, tls.make_ca(tmp_path / "other", "another CA"))


@pytest.fixture
def https_controller(tmp_path: pathlib.Path, broker: BrokerFixture,
                     pki: Pki) -> Iterator[Controller]:
    ctl = Controller(tmp_path / "controller" / "controller.db", broker.controller_settings(),
                     http_port=0, sweep_interval=0.5, broker_passwd=broker.config.passwd,
                     header_timeout=HEADER_TIMEOUT, http_tls_cert=pki.server.cert_path,
                     http_tls_key=pki.server.key_path)
    try:
        ctl.start()
        wait_for(ctl.hub.session.is_connected.is_set)
        yield ctl
    finally:
        ctl.close()


@pytest.fixture
def https_bed(https_controller: Controller, make_node: Any, alsa_dir: pathlib.Path,
              pki: Pki) -> Iterator[SpeakerTestbed]:
    testbed = SpeakerTestbed(https_controller, make_node, alsa_dir)
    trusting(testbed.http, pki)
    yield testbed
    testbed.close()


def trusting(session: requests.Session, pki: Pki) -> requests.Session:
    """``session``, trusting the test CA only (not REQUESTS_CA_BUNDLE, which requests
    prefers to a session's own ``verify``)."""
    session.trust_env = False
    session.verify = str(pki.ca.cert_path)
    return session


def port_of(ctl: Controller) -> int:
    return int(ctl.api_url.rsplit(":", 1)[1])


def seconds_until_closed(sock: socket.socket | ssl.SSLSocket) -> float:
    """Read until the server closes the connection; how long that took."""
    started = time.monotonic()
    try:
        while sock.recv(1024):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass  # an abort is a close too
    return time.monotonic() - started


# -- the server ----------------------------------------------------------------------------


def test_controller_serves_https_verified_against_the_commune_ca(https_controller, pki):
    url = https_controller.api_url
    assert url.startswith("https://127.0.0.1:")
    health = requests.get(f"{url}/api/v1/health", verify=pki.ca.cert_path, timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    local = url.replace("127.0.0.1", "localhost")  # a name the certificate carries
    assert requests.get(f"{local}/api/v1/health", verify=pki.ca.cert_path, timeout=10).ok
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"{url}/api/v1/health", verify=pki.other.cert_path, timeout=10)


def test_plain_http_to_the_https_port_gets_no_answer(https_controller):
    plain = https_controller.api_url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/api/v1/health", timeout=10)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_older_than_1_2_is_refused(https_controller, pki):
    assert https_controller.http.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(pki.ca.cert_path)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", port_of(https_controller)), 10) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            old.wrap_socket(raw, server_hostname="127.0.0.1")
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # offered, and refused


def test_stalled_tls_handshake_is_closed_within_the_header_timeout(https_controller):
    """A client that opens TCP and never finishes the handshake holds no socket for long
    (asyncio's default wait is 60 s, and such connections are not yet counted against
    the connection cap)."""
    with socket.create_connection(("127.0.0.1", port_of(https_controller)), 10) as raw:
        raw.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        waited = seconds_until_closed(raw)
    assert HEADER_TIMEOUT * 0.8 <= waited < HEADER_TIMEOUT + 2


def test_silent_client_after_the_handshake_is_closed_by_the_header_timeout(
        https_controller, pki):
    trust = ssl.create_default_context(cafile=str(pki.ca.cert_path))
    with socket.create_connection(("127.0.0.1", port_of(https_controller)), 10) as raw:
        with trust.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            waited = seconds_until_closed(conn)
    assert HEADER_TIMEOUT * 0.8 <= waited < HEADER_TIMEOUT + 2


def test_session_cookie_is_secure_over_https(https_controller, pki):
    https_controller.writer.call(lambda db: users.add_user(db, "lanh-dao", LEADER,
                                                           "mật-khẩu-đủ-dài"))
    url = https_controller.api_url + "/api/v1"
    browser = trusting(requests.Session(), pki)
    resp = browser.post(url + "/session", json={"name": "lanh-dao",
                                                "password": "mật-khẩu-đủ-dài"}, timeout=10)
    assert resp.status_code == 200
    cookie = resp.headers["set-cookie"]
    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert browser.get(url + "/ratings", timeout=10).status_code == 200


def test_serve_refuses_half_a_tls_pair_or_a_wrong_key_at_start(tmp_path, pki):
    """Checked before the port is taken, not at the first request."""
    def serve(*tls_options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CONTROLLER, "--log-level", "WARNING", "--data", str(tmp_path / "data"), "serve",
             "--mqtt-port", str(free_port()), "--http-port", "0", *tls_options],
            capture_output=True, text=True, timeout=30)

    cert, key = str(pki.server.cert_path), str(pki.server.key_path)
    half = serve("--http-tls-cert", cert)
    assert half.returncode == 2 and "--http-tls-key is missing" in half.stderr
    half = serve("--http-tls-key", key)
    assert half.returncode == 2 and "--http-tls-cert is missing" in half.stderr
    missing = serve("--http-tls-cert", cert, "--http-tls-key", str(tmp_path / "nope.key"))
    assert missing.returncode == 2
    assert f"HTTPS key {tmp_path / 'nope.key'}: No such file" in missing.stderr
    stranger = tls.issue_server_cert(pki.other, tmp_path / "stranger", "controller",
                                     ["localhost"], [])
    wrong = serve("--http-tls-cert", cert, "--http-tls-key", str(stranger.key_path))
    assert wrong.returncode == 2
    assert f"HTTPS certificate {cert} with key {stranger.key_path}" in wrong.stderr
    assert "key values mismatch" in wrong.stderr.lower()


# -- speakers ------------------------------------------------------------------------------


def test_speaker_downloads_audio_over_https_checked_against_the_ca(https_bed, pki):
    audio = https_bed.upload(noise_wav(1.0)).json()
    speaker, _, _ = https_bed.speaker("spk-tls-1", controller_ca=str(pki.ca.cert_path))
    assert https_bed.schedule(audio["id"], soon(600)).status_code == 201
    wait_for(lambda: speaker.cache.has(audio["sha256"]), timeout=20)
    assert speaker.cache.load(audio["sha256"])[:4] == b"RIFF"


def test_speaker_refuses_a_controller_its_ca_did_not_sign(https_bed, pki, caplog):
    caplog.set_level(logging.WARNING, logger="speaker_node.cache")
    audio = https_bed.upload(noise_wav(1.0)).json()
    speaker, _, _ = https_bed.speaker("spk-tls-2", controller_ca=str(pki.other.cert_path))
    assert https_bed.schedule(audio["id"], soon(600)).status_code == 201
    expected = f"the controller's certificate is not one {pki.other.cert_path} vouches for"
    wait_for(lambda: expected in caplog.text, timeout=20)
    assert not speaker.cache.has(audio["sha256"])


def test_speaker_trusts_the_mqtt_ca_unless_controller_ca_names_another(
        tmp_path, broker, alsa_dir, pki):
    """The rule in speaker_node/settings.py: ``[speaker] controller_ca``, else the
    commune CA of ``[mqtt] tls_ca``."""
    from gpiozero.pins.mock import MockFactory
    for device_id, role, expected in (
            ("spk-ca-1", {}, pki.ca.cert_path),
            ("spk-ca-2", {"controller_ca": str(pki.other.cert_path)}, pki.other.cert_path)):
        config = node_config(tmp_path, broker, device_id, "speaker", role_settings={
            "controller_url": "https://localhost:8443",
            "output_device": new_device(alsa_dir)[0], **role})
        config = dataclasses.replace(config, mqtt=dataclasses.replace(
            config.mqtt, tls_ca=str(pki.ca.cert_path)))
        node = Node(config)  # not started: the test broker speaks no TLS
        speaker = build(node, pin_factory=MockFactory())
        try:
            assert speaker.cache.ca_file == str(expected)
            assert speaker.cache.refusal is None
        finally:
            speaker.close()
            node.close()


class NoNetwork:
    """A requests session that records calls and connects nowhere."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get(self, url: str, **_: Any) -> Any:
        self.calls.append(url)
        raise AssertionError(f"the cache tried to connect to {url}")

    def close(self) -> None:
        pass


def test_cache_never_sends_the_password_over_plain_http_to_another_machine(
        tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="speaker_node.cache")
    network = NoNetwork()
    cache = AudioCache(tmp_path / "audio", "http://192.0.2.1:8080", auth=("loa-1", "pw"),
                       session=network, backoff=5.0)
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(CacheError, match=r"controller_url http://192\.0\.2\.1:8080 is "
                                             r"plain http to another machine.*https://"):
            cache.fetch("a" * 64, 1000)
    assert time.monotonic() - started < 1.0  # no retries, no backoff
    assert network.calls == []
    said = [r.getMessage() for r in caplog.records if "192.0.2.1" in r.getMessage()]
    assert len(said) == 1 and "no audio will be downloaded" in said[0]  # once, not per try
    cache.close()


@pytest.mark.parametrize("url, in_clear", [
    ("http://192.0.2.1", True), ("http://10.0.0.2:8080", True),
    ("http://xa-tan-an.local:8080", True), ("http://localhost.example.com", True),
    ("http://127.0.0.1:8080", False), ("http://127.9.9.9", False),
    ("http://localhost:8080/", False), ("http://[::1]:8080", False),
    ("https://192.0.2.1:8443", False), ("HTTPS://xa-tan-an.local", False),
])
def test_password_goes_in_clear_only_over_plain_http_off_the_machine(url, in_clear):
    assert password_in_clear(url) is in_clear


def test_device_add_refuses_a_plain_http_controller_url_to_another_machine(tmp_path, capsys):
    out = tmp_path / "loa-1.toml"

    def add(url: str) -> int:
        return controller_main(["--data", str(tmp_path / "data"), "device", "add", "loa-1",
                                "--role", "speaker", "--broker-dir", str(tmp_path / "broker"),
                                "--out", str(out), "--controller-url", url])

    with pytest.raises(SystemExit) as refused:
        add("http://10.0.0.2:8080")
    assert refused.value.code == 2
    assert "--controller-url http://10.0.0.2:8080" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "broker").exists()  # nothing written
    assert add("https://10.0.0.2:8443") == 0
    assert 'controller_url = "https://10.0.0.2:8443"' in out.read_text()


# -- kiosks --------------------------------------------------------------------------------

#: Any PNG will do: the controller checks the magic of photos and screenshots.
PNG = (pathlib.Path(__file__).parent.parent / "docs" / "screenshots" /
       "kiosk-closed-800x480.png").read_bytes()


def admin_session(ctl: Controller, pki: Pki) -> requests.Session:
    from controller.access.tokens import create_token
    token = ctl.writer.call(lambda db: create_token(db, "tls-test"))
    session = trusting(requests.Session(), pki)
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def officer_photo(ctl: Controller, pki: Pki) -> str:
    """An officer with a photo on ``ctl``; the photo's SHA-256."""
    api = ctl.api_url + "/api/v1"
    http = admin_session(ctl, pki)
    http.put(f"{api}/officers/lan", json={"name": "Nguyễn Thị Lan"},
             timeout=10).raise_for_status()
    stored = http.put(f"{api}/officers/lan/photo", data=PNG, timeout=10)
    stored.raise_for_status()
    return str(stored.json()["sha256"])


def test_kiosk_fetches_officer_photos_over_https_checked_against_the_ca(
        https_controller, pki, tmp_path):
    from kiosk.photos import PhotoCache
    sha = officer_photo(https_controller, pki)
    photos = PhotoCache(tmp_path / "photos", https_controller.api_url,
                        ca_file=str(pki.ca.cert_path))
    try:
        photos.want([sha])
        path = wait_for(lambda: photos.path(sha), timeout=20)
        assert path.read_bytes() == PNG
    finally:
        photos.close()


def test_kiosk_fetches_no_photo_from_a_controller_its_ca_did_not_sign(
        https_controller, pki, tmp_path, caplog):
    from kiosk.photos import PhotoCache
    caplog.set_level(logging.WARNING, logger="kiosk.photos")
    sha = officer_photo(https_controller, pki)
    photos = PhotoCache(tmp_path / "photos", https_controller.api_url,
                        ca_file=str(pki.other.cert_path))
    try:
        photos.want([sha])
        expected = (f"officer photo {sha[:12]} not fetched: GET {https_controller.api_url}"
                    f"/api/v1/photos/{sha}: the controller's certificate is not one "
                    f"{pki.other.cert_path} vouches for")
        wait_for(lambda: expected in caplog.text, timeout=20)
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
        assert photos.path(sha) is None
    finally:
        photos.close()


def test_kiosk_uploads_a_screenshot_over_https_checked_against_the_ca(
        https_controller, pki, tmp_path):
    from kiosk.errors import UploadError
    from kiosk.upload import upload_png
    https_controller.registry.add("kiosk-tls-1", "kiosk")
    http = admin_session(https_controller, pki)
    api = https_controller.api_url + "/api/v1"
    asked = http.post(f"{api}/devices/kiosk-tls-1/screenshot",
                      json={"base_url": https_controller.api_url}, timeout=10)
    assert asked.status_code == 201
    url = asked.json()["args"]["url"]
    assert url.startswith(https_controller.api_url + "/api/v1/screenshots/")
    with pytest.raises(UploadError, match="the controller's certificate is not one "
                       f"{pki.other.cert_path} vouches for"):
        upload_png(url, PNG, ca_file=str(pki.other.cert_path))
    missing = str(tmp_path / "missing-ca.crt")
    with pytest.raises(UploadError, match=f"CA file {missing}: No such file"):
        upload_png(url, PNG, ca_file=missing)
    # Neither sent the PNG: the one-time token is still unused.
    assert upload_png(url, PNG, ca_file=str(pki.ca.cert_path)) == 200
    got = http.get(f"{api}/devices/kiosk-tls-1/screenshot", timeout=10)
    assert got.status_code == 200 and got.content == PNG


class Unreachable:
    """Stands in for urllib's urlopen: records where it was asked to connect."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, request: Any, **_: Any) -> Any:
        self.urls.append(request if isinstance(request, str) else request.full_url)
        raise OSError("no network in this test")


def test_kiosk_never_uploads_a_screenshot_over_plain_http_to_another_machine(monkeypatch):
    import urllib.request

    from kiosk.errors import UploadError
    from kiosk.upload import upload_png
    network = Unreachable()
    monkeypatch.setattr(urllib.request, "urlopen", network)
    url = "http://192.0.2.1/api/v1/screenshots/mot-lan"
    with pytest.raises(UploadError, match=rf"screenshot upload url {url} is plain http to "
                                          r"another machine.*https://"):
        upload_png(url, PNG)
    assert network.urls == []  # refused before connecting
    loopback = "http://127.0.0.1:8080/api/v1/screenshots/mot-lan"
    with pytest.raises(UploadError, match="no network in this test"):
        upload_png(loopback, PNG)  # the loopback never leaves the machine: tried
    assert network.urls == [loopback]


def test_kiosk_trusts_the_mqtt_ca_unless_controller_ca_names_another(tmp_path, broker):
    """The speaker's rule (node_runtime.https): ``[kiosk] controller_ca``, else
    ``[mqtt] tls_ca``, else the system's trusted CAs."""
    from kiosk.cli import controller_ca
    from kiosk.errors import KioskConfigError

    def config(tls_ca: str | None, **role: Any) -> Any:
        made = node_config(tmp_path, broker, "kiosk-ca-1", "kiosk", role_settings=role)
        return dataclasses.replace(made, mqtt=dataclasses.replace(made.mqtt, tls_ca=tls_ca))

    assert controller_ca(config("/etc/thanthien/ca.crt")) == "/etc/thanthien/ca.crt"
    assert controller_ca(config("/etc/thanthien/ca.crt", controller_ca="/x.crt")) == "/x.crt"
    assert controller_ca(config(None)) is None
    with pytest.raises(KioskConfigError, match="controller_ca = 42"):
        controller_ca(config(None, controller_ca=42))


def test_client_context_checks_the_certificate_with_tls_1_2_or_later(pki, tmp_path):
    for ca in (str(pki.ca.cert_path), None):
        context = client_context(ca)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    only = client_context(str(pki.ca.cert_path)).get_ca_certs()
    assert [c["subject"] for c in only] == [((("commonName", "thanthien test CA"),),)]
    with pytest.raises(OSError, match=f"CA file {tmp_path / 'nope.crt'}: No such file"):
        client_context(str(tmp_path / "nope.crt"))


# -- the operator's CLI --------------------------------------------------------------------


def test_broadcast_cli_checks_the_api_certificate_against_ca(https_controller, pki, capsys,
                                                              monkeypatch, tmp_path):
    from controller.access.tokens import create_token
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    token = https_controller.writer.call(lambda db: create_token(db, "radio"))

    def broadcast_list(ca: pathlib.Path) -> int:
        return controller_main(["--data", str(tmp_path / "data"), "broadcast",
                                "--api", https_controller.api_url, "--token", token,
                                "--ca", str(ca), "list"])

    assert broadcast_list(pki.ca.cert_path) == 0
    assert capsys.readouterr().out.strip() == "[]"
    with pytest.raises(SystemExit) as refused:
        broadcast_list(pki.other.cert_path)
    assert refused.value.code == 2
    assert (f"{https_controller.api_url}: the API's certificate is not one "
            f"{pki.other.cert_path} vouches for") in capsys.readouterr().err


def test_broadcast_cli_defaults_to_the_https_api_on_this_machine(monkeypatch):
    import argparse

    from controller.cli import broadcasts
    monkeypatch.delenv("THANTHIEN_API", raising=False)
    parser = argparse.ArgumentParser()
    broadcasts.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["broadcast", "list"])
    assert args.api == "https://localhost:8443" and args.ca is None
