"""``thanthien-controller``: run the service, manage tokens and devices.

Thin: reads argv and environment, builds objects, turns library errors into
messages a person reads.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Sequence

from controller import auth, registry, speaker_cli
from controller.broker import CONTROLLER_USER, BrokerConfig, new_password
from controller.errors import BrokerError
from controller.registry import Registry
from controller.service import Controller
from controller.writer import open_writer
from node_runtime.config import MqttSettings
from provisioning.identity import new_identity
from provisioning.node_file import node_file_text
from wire.errors import ThanthienError

DB_NAME = "controller.db"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thanthien-controller",
                                     description="The commune's device controller.")
    parser.add_argument("--data", default=os.environ.get("THANTHIEN_DATA", "/var/lib/thanthien"),
                        help="folder of the controller's database (default %(default)s)")
    parser.add_argument("--log-level", default=os.environ.get("THANTHIEN_LOG", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

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
    serve.add_argument("--url-file", help="write the API base URL here once serving")
    serve.add_argument("--broker-passwd", help="the broker's password file: devices use their "
                       "broker credentials to download audio (speakers)")

    token = sub.add_parser("token", help="create or revoke an API token")
    token.add_argument("action", choices=("create", "revoke"))
    token.add_argument("name")

    device = sub.add_parser("device", help="register devices")
    dsub = device.add_subparsers(dest="action", required=True)
    add = dsub.add_parser("add", help="new identity, broker account, registry entry, node file")
    add.add_argument("device_id")
    add.add_argument("--role", required=True, choices=registry.ROLES)
    add.add_argument("--hamlet")
    add.add_argument("--label")
    add.add_argument("--broker-dir", required=True, help="the broker's config folder")
    add.add_argument("--mqtt-host", default="127.0.0.1")
    add.add_argument("--mqtt-port", type=int, default=1883)
    add.add_argument("--node-data-dir", default="/var/lib/thanthien")
    add.add_argument("--out", required=True, help="where to write the device's node.toml")
    imp = dsub.add_parser("import", help="import a broker-account line made offline")
    imp.add_argument("account_file")
    imp.add_argument("--role", required=True, choices=registry.ROLES)
    imp.add_argument("--broker-dir", required=True)
    dsub.add_parser("list", help="list devices")
    speaker_cli.add_parsers(sub)

    broker = sub.add_parser("broker", help="write the Mosquitto configuration")
    bsub = broker.add_subparsers(dest="action", required=True)
    init = bsub.add_parser("init", help="config, ACL, and the controller's broker account")
    init.add_argument("--broker-dir", required=True)
    init.add_argument("--host", default="127.0.0.1", help="address to listen on")
    init.add_argument("--port", type=int, default=1883)
    init.add_argument("--tls-cert", help="server certificate (turns TLS on)")
    init.add_argument("--tls-key", help="server key")

    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = pathlib.Path(args.data)
    try:
        if args.command == "serve":
            return _serve(args, data)
        if args.command == "token":
            return _token(args, data)
        if args.command == "broker":
            return _broker(args)
        if args.command in ("audio", "broadcast"):
            return speaker_cli.run(args, data) or 0
        return _device(args, data)
    except (ThanthienError, OSError) as exc:
        parser.exit(2, f"thanthien-controller: {exc}\n")
    return 0


def _serve(args: argparse.Namespace, data: pathlib.Path) -> int:
    password = os.environ.get("THANTHIEN_MQTT_PASSWORD")
    if args.mqtt_password_file:
        password = pathlib.Path(args.mqtt_password_file).read_text().strip()
    mqtt = MqttSettings(host=args.mqtt_host, port=args.mqtt_port, username=args.mqtt_user,
                        password=password, tls_ca=args.mqtt_tls_ca, keepalive=30)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Controller(data / DB_NAME, mqtt, http_host=args.http_host,
                    http_port=args.http_port, broker_passwd=args.broker_passwd) as ctl:
        ctl.start()
        if args.url_file:
            pathlib.Path(args.url_file).write_text(ctl.api_url + "\n")
        print(f"thanthien controller: API at {ctl.api_url}/api/v1", flush=True)
        stop.wait()
    return 0


def _broker(args: argparse.Namespace) -> int:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise BrokerError("--tls-cert and --tls-key go together")
    config = BrokerConfig(args.broker_dir, host=args.host, port=args.port,
                          tls_cert=args.tls_cert, tls_key=args.tls_key)
    password = new_password()
    config.set_user(CONTROLLER_USER, password)
    config.write()
    secret = config.directory / "controller-password"
    secret.write_text(password + "\n")
    os.chmod(secret, 0o600)
    print(f"wrote {config.conf}; the controller's broker password is in {secret}")
    return 0


def _token(args: argparse.Namespace, data: pathlib.Path) -> int:
    with open_writer(data / DB_NAME) as writer:
        if args.action == "create":
            print(writer.call(lambda db: auth.create_token(db, args.name)))
        elif not writer.call(lambda db: auth.revoke_token(db, args.name)):
            print(f"no token named {args.name!r}", file=sys.stderr)
            return 1
    return 0


def _device(args: argparse.Namespace, data: pathlib.Path) -> int:
    with open_writer(data / DB_NAME) as writer:
        reg = Registry(writer)
        if args.action == "list":
            for d in registry.list_devices(writer.db):
                state = "online" if d["online"] else "offline"
                print(f"{d['id']:24} {d['role'] or '-':8} {d['status']:9} {state}")
        elif args.action == "add":
            identity = new_identity(args.device_id, args.role, hamlet=args.hamlet)
            broker = BrokerConfig(args.broker_dir)
            broker.set_user(identity.device_id, identity.password)
            reg.add(identity.device_id, args.role, label=args.label, hamlet=args.hamlet)
            out = pathlib.Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(node_file_text(identity, mqtt_host=args.mqtt_host,
                                          mqtt_port=args.mqtt_port,
                                          data_dir=args.node_data_dir))
            os.chmod(out, 0o600)
            print(f"device {identity.device_id} registered; node file {out}. Reload the broker "
                  "(systemctl reload mosquitto) to let it in.")
        else:
            line = pathlib.Path(args.account_file).read_text().strip()
            device_id, _, password_hash = line.partition(":")
            BrokerConfig(args.broker_dir).add_hashed(device_id, password_hash)
            reg.add(device_id, args.role)
            print(f"device {device_id} imported; reload the broker to let it in.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
