"""``thanthien-controller device add|import|list|revoke``: register devices with the broker and
the registry, online (a new identity and its node file) or from an account made offline."""

from __future__ import annotations

import argparse
import os
import pathlib
from typing import Any

from controller.broker import BrokerConfig, signal_reload
from controller.cli.serve import DB_NAME
from controller.db.writer import open_writer
from controller.errors import BrokerError, InvalidRequest
from controller.fleet import registry
from controller.fleet.registry import Registry
from controller.fleet.revocation import Revocation
from node_runtime.https import password_in_clear
from provisioning.identity import new_identity
from provisioning.node_file import node_file_text
from wire.topics import check_device_id


def add_parser(sub: Any) -> None:
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
    add.add_argument("--mqtt-tls-ca", help="the commune CA's path on the device (e.g. "
                     "/etc/thanthien/ca.crt): the node connects with TLS")
    add.add_argument("--node-data-dir", default="/var/lib/thanthien")
    add.add_argument("--out", required=True, help="where to write the device's node.toml")
    add.add_argument("--controller-url", help="speakers: the controller's HTTPS address, e.g. "
                     "https://xa-tan-an.local:8443, from which they download audio with their "
                     "password (written to the node file's [speaker] table)")
    imp = dsub.add_parser("import", help="import a broker-account line made offline")
    imp.add_argument("account_file")
    imp.add_argument("--role", required=True, choices=registry.ROLES)
    imp.add_argument("--broker-dir", required=True)
    dsub.add_parser("list", help="list devices")
    rev = dsub.add_parser("revoke", help="refuse a device from now on: its broker account is "
                          "removed and the running broker reloaded, closing its connection")
    rev.add_argument("device_id")
    rev.add_argument("--broker-dir", required=True, help="the broker's config folder")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    if args.action == "add" and args.controller_url:
        _check_controller_url(args.controller_url)  # before anything is written
    with open_writer(data / DB_NAME) as writer:
        reg = Registry(writer)
        if args.action == "revoke":
            result = Revocation(reg, BrokerConfig(args.broker_dir)).revoke(args.device_id)
            at_broker = ("its connection was closed" if result["broker_reloaded"] else
                         "no running broker found: reload it (systemctl reload "
                         "thanthien-broker) if it runs elsewhere")
            print(f"device {args.device_id} revoked; broker account "
                  f"{'removed' if result['broker_account_removed'] else 'was already gone'}; "
                  f"{at_broker}.")
        elif args.action == "list":
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
            role_settings = ({"controller_url": args.controller_url}
                             if args.controller_url and args.role == "speaker" else None)
            out.write_text(node_file_text(identity, mqtt_host=args.mqtt_host,
                                          mqtt_port=args.mqtt_port, tls_ca=args.mqtt_tls_ca,
                                          data_dir=args.node_data_dir,
                                          role_settings=role_settings))
            os.chmod(out, 0o600)
            print(f"device {identity.device_id} registered; node file {out}. "
                  f"{_reloaded(broker)}")
        else:
            line = pathlib.Path(args.account_file).read_text().strip()
            device_id, _, password_hash = line.partition(":")
            check_device_id(device_id)  # before anything is written
            if not password_hash.startswith("$7$") or ":" in password_hash or any(
                    c.isspace() for c in password_hash):
                raise BrokerError(f"{args.account_file}: expected one line 'id:$7$...'")
            reg.add(device_id, args.role)
            broker = BrokerConfig(args.broker_dir)
            broker.add_hashed(device_id, password_hash)
            print(f"device {device_id} imported. {_reloaded(broker)}")
    return 0


def _reloaded(broker: BrokerConfig) -> str:
    """Make the running broker take the accounts as written now (a replaced password
    also closes the connection made with the old one); say what happened."""
    if signal_reload(broker):
        return "The broker has re-read its accounts."
    return ("No running broker found: reload it (systemctl reload thanthien-broker) to let "
            "the device in.")


def _check_controller_url(url: str) -> None:
    """Refuse a ``--controller-url`` a speaker would not send its password to."""
    if password_in_clear(url):
        raise InvalidRequest(f"--controller-url {url}: plain http to another machine would "
                             "carry the speaker's password in clear; give the controller's "
                             "https:// address (e.g. https://xa-tan-an.local:8443)")
