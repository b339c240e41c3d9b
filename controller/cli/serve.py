"""``thanthien-controller serve``: run the MQTT hub, the HTTP API and the housekeeping."""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import threading
from typing import Any

from controller.broker import CONTROLLER_USER
from controller.cameras import clips
from controller.errors import ControllerError
from controller.fleet import rate_limit
from controller.service import Controller
from node_runtime.config import MqttSettings
from wire.camera import HOLD_AFTER_S, HOLD_BEFORE_S

DB_NAME = "controller.db"


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the MQTT hub and the HTTP API")
    serve.add_argument("--mqtt-host", default="127.0.0.1")
    serve.add_argument("--mqtt-port", type=int, default=1883)
    serve.add_argument("--mqtt-user", default=CONTROLLER_USER)
    serve.add_argument("--mqtt-password-file",
                       help="file holding the controller's broker password "
                            "(or set THANTHIEN_MQTT_PASSWORD)")
    serve.add_argument("--mqtt-tls-ca", help="CA file: connect with TLS")
    serve.add_argument("--http-host", default="127.0.0.1")
    serve.add_argument("--http-port", type=int, default=8080)
    serve.add_argument("--http-tls-cert", metavar="FILE",
                       help="serve HTTPS with this PEM certificate (setup writes "
                            "/etc/thanthien/tls/controller.crt); needs --http-tls-key")
    serve.add_argument("--http-tls-key", metavar="FILE",
                       help="the certificate's PEM private key; needs --http-tls-cert")
    serve.add_argument("--http-workers", type=int, default=16,
                       help="threads for request handlers (default %(default)s)")
    serve.add_argument("--http-header-timeout", type=float, default=10.0,
                       help="close connections that send no whole request head in this "
                            "many seconds (default %(default)s)")
    serve.add_argument("--http-body-timeout", type=float, default=30.0,
                       help="answer 408 when a request body stalls this many seconds "
                            "(default %(default)s)")
    serve.add_argument("--device-rate", type=float, default=rate_limit.RATE,
                       help="messages a second each device may send on average; events "
                            "beyond it are delayed, never lost (default %(default)s)")
    serve.add_argument("--device-burst", type=float, default=rate_limit.BURST,
                       help="messages a device may send at once before --device-rate "
                            "applies (default %(default)s)")
    serve.add_argument("--url-file", help="write the API base URL here once serving")
    serve.add_argument("--broker-passwd", help="the broker's password file: devices use their "
                       "broker credentials to download audio (speakers)")
    serve.add_argument("--media-dir", help="audio renditions (default DATA/audio)")
    serve.add_argument("--clips-dir", help="desk cameras' clips (default DATA/clips)")
    serve.add_argument("--hold-before-min", type=float, default=HOLD_BEFORE_S / 60,
                       help="footage a dissatisfied rating holds before it, in minutes "
                            "(default %(default)s)")
    serve.add_argument("--hold-after-min", type=float, default=HOLD_AFTER_S / 60,
                       help="and after it (default %(default)s)")
    serve.add_argument("--clips-quota-gb", type=float, default=clips.QUOTA_BYTES / 2**30,
                       help="room the clips may take, in GiB (default %(default)s)")
    serve.add_argument("--device-site", metavar="FILE",
                       help="site settings for devices' cards made in the console (the keys "
                            "of thanthien-provision --site; see docs/provisioning.md)")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    if bool(args.http_tls_cert) != bool(args.http_tls_key):
        missing = "--http-tls-key" if args.http_tls_cert else "--http-tls-cert"
        raise ControllerError(f"{missing} is missing: HTTPS needs both --http-tls-cert "
                              "and --http-tls-key")
    password = os.environ.get("THANTHIEN_MQTT_PASSWORD")
    if args.mqtt_password_file:
        password = pathlib.Path(args.mqtt_password_file).read_text().strip()
    mqtt = MqttSettings(host=args.mqtt_host, port=args.mqtt_port, username=args.mqtt_user,
                        password=password, tls_ca=args.mqtt_tls_ca, keepalive=30)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Controller(data / DB_NAME, mqtt, http_host=args.http_host,
                    http_port=args.http_port, broker_passwd=args.broker_passwd,
                    media_dir=args.media_dir, clips_dir=args.clips_dir,
                    clips_quota=int(args.clips_quota_gb * 2**30),
                    device_site=args.device_site,
                    hold_before_s=args.hold_before_min * 60,
                    hold_after_s=args.hold_after_min * 60,
                    http_workers=args.http_workers,
                    header_timeout=args.http_header_timeout,
                    body_timeout=args.http_body_timeout,
                    http_tls_cert=args.http_tls_cert, http_tls_key=args.http_tls_key,
                    device_rate=args.device_rate, device_burst=args.device_burst) as ctl:
        ctl.start()
        if args.url_file:
            pathlib.Path(args.url_file).write_text(ctl.api_url + "\n")
        print(f"thanthien controller: API at {ctl.api_url}/api/v1", flush=True)
        stop.wait()
    return 0
