"""The technician's check: is this device connected to the broker, and if not, why.

Each probe looks at one step on the way to the broker (Wi-Fi, network, DNS,
TCP, TLS, the broker's answer to the device's account) or at the clock, and
returns a :class:`Check` in English and in Vietnamese. What the probes read and
open (``/proc``, the resolver, sockets, ``iwgetid``, the broker) is in
:class:`System`, which tests redirect. :func:`diagnose` runs them within about
ten seconds and names the first failure and what to do about it.

``python -m node_runtime.diagnose --config /etc/thanthien/node.toml [--json]``
prints the report; the exit status is 0 when the device can connect, 1 when it
cannot, 2 for a node file that cannot be used. While the node itself runs, its
status page (:mod:`node_runtime.status_page`) shows the same from its own session.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import errno
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from node_runtime.clock import clock_check
from node_runtime.config import MqttSettings, NodeConfig, load_config
from node_runtime.errors import ConfigError
from node_runtime.session import LinkEvent, MqttSession, probe_connack
from node_runtime.telemetry import SystemProbe

#: Each check's name, then its label in English and Vietnamese, in the order shown.
LABELS = {"wifi": ("Wi-Fi", "Wi-Fi"), "network": ("Network", "Mạng"),
          "dns": ("Broker name (DNS)", "Tên máy chủ (DNS)"),
          "tcp": ("Reaching the broker (TCP)", "Kết nối tới máy chủ (TCP)"),
          "tls": ("Security (TLS)", "Bảo mật (TLS)"),
          "credentials": ("Device account", "Tài khoản thiết bị"),
          "clock": ("Clock", "Đồng hồ")}
#: CONNACK reasons that mean the account itself (MQTT 5; 3.1.1's return codes 4 and 5).
BAD_CREDENTIALS = (0x86, 0x87)
VIETNAM = dt.timezone(dt.timedelta(hours=7), "UTC+7")  # no daylight saving


@dataclasses.dataclass(frozen=True)
class Check:
    """One step's result: ``ok`` is None when it does not apply or could not be checked."""

    name: str
    ok: bool | None
    detail: str
    detail_vi: str


@dataclasses.dataclass(frozen=True)
class Report:
    """All checks, whether the device is connected, and the verdict for a technician."""

    connected: bool
    checks: list[Check]
    verdict: str
    verdict_vi: str

    @property
    def ok(self) -> bool:
        """Connected (or able to) with no check failing."""
        return self.connected and all(c.ok is not False for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"connected": self.connected, "ok": self.ok, "verdict": self.verdict,
                "verdict_vi": self.verdict_vi,
                "checks": [{**dataclasses.asdict(c), "label": LABELS[c.name][0],
                            "label_vi": LABELS[c.name][1]} for c in self.checks]}


def resolve_host(host: str, port: int, timeout: float) -> list[str]:
    """The host's addresses; ``getaddrinfo`` has no timeout of its own, so it runs on a
    daemon thread that is left to finish (the resolver's own timeout) if it is late."""
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, name="diagnose-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if not found:
        raise TimeoutError(f"no answer within {timeout:g} s")
    if isinstance(found[0], BaseException):
        raise found[0]
    return list(dict.fromkeys(str(info[4][0]) for info in found[0]))


def iwgetid_ssid(interface: str) -> str | None:
    """The Wi-Fi network's name from ``iwgetid -r``, or None (not installed, not joined)."""
    if shutil.which("iwgetid") is None:
        return None
    try:
        out = subprocess.run(["iwgetid", "-r", interface], capture_output=True, text=True,
                             timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@dataclasses.dataclass(frozen=True)
class System:
    """What the probes read and open; tests replace parts with ``dataclasses.replace``."""

    probe: SystemProbe = dataclasses.field(default_factory=SystemProbe)  # /proc readings
    resolve: Callable[[str, int, float], list[str]] = resolve_host
    connect: Callable[[tuple[str, int], float], socket.socket] = socket.create_connection
    ssid_of: Callable[[str], str | None] = iwgetid_ssid
    ask_broker: Callable[[str, MqttSettings, float], LinkEvent | None] = probe_connack


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_network(host: str, system: System) -> tuple[Check, str | None]:
    """A default route through an interface with an address; also returns that interface."""
    if _is_loopback(host):
        return Check("network", True, "The broker is on this device.",
                     "Máy chủ MQTT ở ngay trên thiết bị này."), None
    route = system.probe.default_route()
    if route is None:
        return Check("network", False, "No network: the device has no way out (no default "
                     "route). Check the cable or Wi-Fi, and that the router gives addresses "
                     "(DHCP).", "Không có mạng: thiết bị chưa có đường ra (không có tuyến "
                     "mặc định). Kiểm tra dây mạng hoặc Wi-Fi, và bộ định tuyến có cấp địa "
                     "chỉ (DHCP)."), None
    interface, gateway = route
    address = system.probe.interface_address(interface)
    if address is None:
        return Check("network", False, f"{interface} has no IP address: check the cable or "
                     "Wi-Fi and the router's DHCP.", f"Cổng {interface} chưa có địa chỉ IP: "
                     "kiểm tra dây mạng hoặc Wi-Fi và DHCP của bộ định tuyến."), interface
    return Check("network", True, f"{interface} {address}, gateway {gateway}.",
                 f"{interface} {address}, cổng ra {gateway}."), interface


def check_wifi(interface: str | None, needed: bool, system: System) -> Check:
    """Association and signal of the Wi-Fi the device goes out through (if it does)."""
    radios = system.probe.wireless()
    if not radios:
        return Check("wifi", None, "No Wi-Fi on this device.", "Thiết bị không có Wi-Fi.")
    if not needed or (interface is not None and interface not in radios):
        en, vi = (f" (network via {interface})", f" (mạng qua {interface})") if interface else (
            "", "")
        return Check("wifi", None, f"Wi-Fi not in use{en}.", f"Không dùng Wi-Fi{vi}.")
    name = interface or next(iter(radios))
    quality, level = radios[name]
    ssid = system.ssid_of(name)
    if not ssid and quality <= 0:
        return Check("wifi", False, f"Wi-Fi {name} is not connected to any network: check the "
                     "network name and password in the Wi-Fi settings, and that the access "
                     "point is on and near enough.", f"Wi-Fi {name} chưa kết nối mạng nào: "
                     "kiểm tra tên mạng và mật khẩu Wi-Fi, bộ phát có bật và đủ gần.")
    joined = f' "{ssid}"' if ssid else ""
    weak = level <= -75 or quality < 20
    en, vi = ("; weak signal: bring the access point closer", "; sóng yếu: đặt bộ phát gần "
              "hơn") if weak else ("", "")
    return Check("wifi", True, f"Wi-Fi {name} connected to{joined or ' a network'}, signal "
                 f"{quality:g} ({level:g} dBm){en}.", f"Wi-Fi {name} đã kết nối{joined}, "
                 f"sóng {quality:g} ({level:g} dBm){vi}.")


def check_dns(host: str, port: int, timeout: float, system: System) -> tuple[Check, list[str]]:
    """The broker's addresses (a host given as an address needs no lookup)."""
    try:
        ipaddress.ip_address(host)
        return Check("dns", None, f"The broker is given by its address {host}: no name to "
                     "look up.", f"Máy chủ được ghi bằng địa chỉ {host}: không cần tra "
                     "tên."), [host]
    except ValueError:
        pass
    try:
        addresses = system.resolve(host, port, timeout)
    except (OSError, UnicodeError) as exc:
        why = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
        return Check("dns", False, f"The broker's name {host} cannot be found ({why}): check "
                     "[mqtt] host in the node file and the router's DNS, or use the broker's "
                     "IP address.", f"Không tìm được máy chủ {host} ({why}): kiểm tra [mqtt] "
                     "host trong tệp cấu hình và DNS của bộ định tuyến, hoặc dùng địa chỉ IP "
                     "của máy chủ."), []
    shown = ", ".join(addresses[:3])
    return Check("dns", True, f"{host} is {shown}.", f"{host} có địa chỉ {shown}."), addresses


def check_tcp(addresses: list[str], port: int, timeout: float,
              system: System) -> tuple[Check, socket.socket | None]:
    """A TCP connection to the broker; returns it open for the TLS check."""
    error: OSError = TimeoutError()
    for address in addresses[:3]:
        try:
            sock = system.connect((address, port), timeout)
        except OSError as exc:
            error = exc
            continue
        return Check("tcp", True, f"{address}:{port} answers.",
                     f"Máy chủ {address}:{port} có trả lời."), sock
    where = f"{addresses[0] if addresses else '?'}:{port}"
    if isinstance(error, ConnectionRefusedError):
        return Check("tcp", False, f"{where} refused the connection: the broker is not "
                     "running there, or [mqtt] port is wrong.", f"Máy chủ {where} từ chối kết "
                     "nối: dịch vụ MQTT chưa chạy, hoặc sai [mqtt] port."), None
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Check("tcp", False, f"No way to {where}: the device is not on the broker's "
                     "network.", f"Không có đường tới {where}: thiết bị chưa vào mạng của "
                     "máy chủ."), None
    why = f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else str(error)
    return Check("tcp", False, f"{where}: {why}. The server may be off, the address wrong, or "
                 "a firewall in the way.", f"Máy chủ {where} không trả lời ({why}): máy chủ "
                 "tắt, sai địa chỉ, hoặc tường lửa chặn cổng."), None


def check_tls(sock: socket.socket | None, host: str, ca: str | None, timeout: float) -> Check:
    """A TLS handshake on ``sock`` as paho makes it: the configured CA, the host's name."""
    if sock is None:
        return _not_checked("tls") if ca else _tls_off()
    with sock:
        if not ca:
            return _tls_off()
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(ca)
        except (OSError, ssl.SSLError) as exc:
            return Check("tls", False, f"Cannot use the CA file {ca} ({exc}): copy the "
                         "commune's ca.crt to the device again.", f"Không dùng được tệp CA "
                         f"{ca} ({exc}): chép lại tệp ca.crt của xã vào thiết bị.")
        sock.settimeout(timeout)
        try:
            context.wrap_socket(sock, server_hostname=host).close()
        except ssl.SSLCertVerificationError as exc:
            return _certificate_refused(exc, host, ca)
        except OSError as exc:  # ssl.SSLError included
            return Check("tls", False, f"TLS handshake failed ({exc}): is [mqtt] port the "
                         "broker's TLS port?", f"Bắt tay TLS thất bại ({exc}): [mqtt] port có "
                         "đúng cổng TLS của máy chủ?")
    return Check("tls", True, f"The broker's certificate is trusted ({ca}).",
                 f"Chứng chỉ của máy chủ hợp lệ ({ca}).")


def _tls_off() -> Check:
    return Check("tls", None, "TLS is off: plain MQTT (no [mqtt] tls_ca).",
                 "Không dùng TLS: MQTT thường (không có [mqtt] tls_ca).")


def _certificate_refused(exc: ssl.SSLCertVerificationError, host: str, ca: str) -> Check:
    now = local_time(time.time())
    if exc.verify_code in (9, 10):  # not yet valid, expired
        en, vi = ("not valid yet", "chưa có hiệu lực") if exc.verify_code == 9 else (
            "expired", "đã hết hạn")
        return Check("tls", False, f"By this device's clock ({now}) the broker's certificate "
                     f"is {en}: the clock is probably wrong; set the time or let NTP reach "
                     "the internet.", f"Theo đồng hồ thiết bị ({now}) chứng chỉ của máy chủ "
                     f"{vi}: đồng hồ có thể sai; chỉnh giờ hoặc cho NTP ra Internet.")
    if exc.verify_code in (62, 64):  # host name or IP address mismatch
        return Check("tls", False, f"The broker's certificate is not made out to {host}: put "
                     "the name or address it was made for in [mqtt] host.", "Chứng chỉ của "
                     f"máy chủ không mang tên {host}: ghi đúng tên hoặc địa chỉ trong chứng "
                     "chỉ vào [mqtt] host.")
    if exc.verify_code in (2, 18, 19, 20, 21):  # no issuer known: another CA signed it
        return Check("tls", False, f"The broker's certificate is not signed by the CA in {ca}: "
                     "copy the commune's ca.crt to the device again.", "Chứng chỉ của máy chủ "
                     f"không do CA trong {ca} ký: chép lại tệp ca.crt của xã vào thiết bị.")
    return Check("tls", False, f"The broker's certificate is refused: {exc.verify_message}.",
                 f"Chứng chỉ của máy chủ bị từ chối: {exc.verify_message}.")


def credentials_check(answer: LinkEvent | None, username: str) -> Check:
    """What the broker said to the device's account (``None``: nothing yet)."""
    if answer is None:
        return Check("credentials", None, "No answer from the broker yet.",
                     "Máy chủ chưa trả lời.")
    if answer.code == 0:
        return Check("credentials", True, f"The broker accepted the account {username}.",
                     f"Máy chủ đã chấp nhận tài khoản {username}.")
    if answer.code in BAD_CREDENTIALS:
        fix = (f"thanthien-provision bundle {username} …; thanthien-controller device import "
               f"--replace {username}.card.json …")
        return Check("credentials", False, f"The broker refused the device's password "
                     f"({answer.reason}): the device was revoked or replaced, or its node file "
                     f"is old. Issue its card again ({fix}) and put the new node file on the "
                     "device.", "Sai mật khẩu thiết bị: thiết bị đã bị thu hồi hoặc thay thế, "
                     f"hoặc tệp cấu hình đã cũ. Cấp lại thẻ ({fix}) rồi chép tệp cấu hình mới "
                     "vào thiết bị.")
    return Check("credentials", False, f"The broker refused the connection: {answer.reason} "
                 f"(code 0x{answer.code:02X}).", f"Máy chủ từ chối kết nối: {answer.reason} "
                 f"(mã 0x{answer.code:02X}).")


def check_clock(synced: Callable[[], bool]) -> Check:
    now = local_time(time.time())
    if synced():
        return Check("clock", True, f"Synchronised: {now}.", f"Đã đồng bộ: {now}.")
    return Check("clock", False, f"Not synchronised (device time {now}): compare it with your "
                 "phone; the device needs the internet for NTP.", f"Chưa đồng bộ (giờ thiết "
                 f"bị {now}): so với giờ trên điện thoại; thiết bị cần Internet để chạy NTP.")


def diagnose(config: NodeConfig, session: MqttSession | None = None, *,
             clock_synced: Callable[[], bool] | None = None, system: System | None = None,
             timeout: float = 3.0, budget: float = 10.0) -> Report:
    """Check every step to the broker. With the node's live ``session`` the broker's answer
    is the one that session last had; without, the broker is asked once (see
    :func:`~node_runtime.session.probe_connack`). Each probe gets ``timeout`` seconds at
    most and all of them ``budget``."""
    system = system or System()
    s, username = config.mqtt, config.mqtt.username or config.device_id
    deadline = time.monotonic() + budget

    def left() -> float:
        return max(0.0, min(timeout, deadline - time.monotonic()))

    network, interface = check_network(s.host, system)
    wifi = check_wifi(interface, not _is_loopback(s.host), system)
    dns, addresses = check_dns(s.host, s.port, left(), system) if left() else (
        _not_checked("dns"), [])
    tcp, sock = check_tcp(addresses, s.port, left(), system) if addresses and left() else (
        _not_checked("tcp"), None)
    tls = check_tls(sock, s.host, s.tls_ca, left() or 0.01)
    if tcp.ok and network.ok is False:  # a LAN without a gateway, or IPv6 only
        network = Check("network", None, "No default route, yet the broker answers.",
                        "Không có tuyến mặc định, nhưng vẫn tới được máy chủ.")
    if session is not None:
        connected = session.is_connected.is_set()
        answer = LinkEvent(0, "Success", 0.0) if connected else session.last_refusal
        credentials = credentials_check(answer, username)
    elif tcp.ok and tls.ok is not False and left():
        credentials = _ask_broker(config, left(), system)
        connected = credentials.ok is True
    else:
        credentials, connected = _not_checked("credentials"), False
    clock = check_clock(clock_synced or clock_check(config.clock_check))
    return _report(connected, [wifi, network, dns, tcp, tls, credentials, clock])


def _ask_broker(config: NodeConfig, timeout: float, system: System) -> Check:
    username = config.mqtt.username or config.device_id
    try:
        answer = system.ask_broker(config.device_id, config.mqtt, timeout)
    except (OSError, ValueError) as exc:
        return Check("credentials", False, f"Could not log in to the broker: {exc}.",
                     f"Không đăng nhập được máy chủ: {exc}.")
    if answer is None:
        return Check("credentials", False, f"The broker did not answer the login within "
                     f"{timeout:g} s: is [mqtt] port an MQTT port?", "Máy chủ không trả lời "
                     f"đăng nhập trong {timeout:g} giây: [mqtt] port có đúng cổng MQTT?")
    return credentials_check(answer, username)


def _report(connected: bool, checks: list[Check]) -> Report:
    failed = next((c for c in checks if c.ok is False), None)
    if failed is None and connected:
        return Report(connected, checks, "Connected", "Đã kết nối")
    if failed is None:
        return Report(connected, checks, "Not connected yet: the broker has not answered; "
                      "wait a minute and check again.", "Chưa kết nối: máy chủ chưa trả lời; "
                      "chờ một phút rồi kiểm tra lại.")
    if connected:
        return Report(connected, checks, f"Connected, but: {failed.detail}",
                      f"Đã kết nối, nhưng: {failed.detail_vi}")
    return Report(connected, checks, f"Not connected: {failed.detail}",
                  f"Chưa kết nối: {failed.detail_vi}")


def _not_checked(name: str) -> Check:
    return Check(name, None, "Not checked: an earlier step failed or time ran out.",
                 "Chưa kiểm tra: bước trước lỗi hoặc hết thời gian.")


def local_time(when: float) -> str:
    """A time as a technician reads it: Vietnam's time, to the minute."""
    return dt.datetime.fromtimestamp(when, VIETNAM).strftime("%Y-%m-%d %H:%M UTC+7")


def format_report(report: Report) -> str:
    """The report as text: per check a Vietnamese line, then an English one."""
    marks = {True: "✔", False: "✘", None: "–"}
    lines = [f"{report.verdict_vi}", f"  {report.verdict}", ""]
    for c in report.checks:
        en, vi = LABELS[c.name]
        lines += [f"{marks[c.ok]} {vi}: {c.detail_vi}", f"  {en}: {c.detail}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m node_runtime.diagnose``: 0 connected, 1 not, 2 a bad node file."""
    parser = argparse.ArgumentParser(prog="python -m node_runtime.diagnose",
                                     description="Is this device connected to the broker?")
    parser.add_argument("--config", default="/etc/thanthien/node.toml", help="the node file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    report = diagnose(config)
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if args.json
          else format_report(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
