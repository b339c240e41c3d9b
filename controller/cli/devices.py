"""``thanthien-controller device add|import|list|revoke``: register devices with the broker and
the registry, online (a new identity and its node file) or from an account made offline."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import Any

from controller.broker import BrokerConfig, signal_reload
from controller.cli.serve import DB_NAME
from controller.db.writer import open_writer
from controller.errors import InvalidRequest
from controller.fleet import registry
from controller.fleet.cards import Cards
from controller.fleet.enrolment import Enrolment, list_enrolments
from controller.fleet.registry import Registry
from controller.fleet.revocation import Revocation
from node_runtime.https import password_in_clear
from provisioning.identity import new_identity
from provisioning.node_file import node_file_text


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
    imp = dsub.add_parser("import", help="import devices' cards (thanthien-provision), made "
                          "offline if need be")
    imp.add_argument("cards", nargs="+", help="<id>.card.json files")
    imp.add_argument("--replace", action="store_true", help="a card for a known id: new "
                     "hardware takes its place; the old credentials are refused at once")
    imp.add_argument("--broker-dir", required=True)
    appr = dsub.add_parser("approve", help="approve a pending device (one that claimed its "
                           "enrolment gets its broker account)")
    appr.add_argument("device_id")
    appr.add_argument("--broker-dir", required=True)
    dsub.add_parser("list", help="list devices")
    enrol = sub.add_parser("enrol", help="one-time tokens for devices that enrol by claim")
    esub = enrol.add_subparsers(dest="action", required=True)
    create = esub.add_parser("create", help="a token for a device id (printed once)")
    create.add_argument("device_id")
    create.add_argument("--role", required=True, choices=("kiosk", "speaker", "camera"))
    create.add_argument("--hamlet")
    create.add_argument("--desk")
    create.add_argument("--label")
    create.add_argument("--ttl-h", type=float, default=168, help="hours until it expires "
                        "(default 168: a week)")
    esub.add_parser("list", help="tokens not yet used up, and claims awaiting approval")
    rev = dsub.add_parser("revoke", help="refuse a device from now on: its broker account is "
                          "removed and the running broker reloaded, closing its connection")
    rev.add_argument("device_id")
    rev.add_argument("--broker-dir", required=True, help="the broker's config folder")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    if args.action == "add" and args.controller_url:
        _check_controller_url(args.controller_url)  # before anything is written
    with open_writer(data / DB_NAME) as writer:
        reg = Registry(writer)
        if args.command == "enrol":
            _enrol(reg, args)
        elif args.action == "revoke":
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
        elif args.action == "approve":
            enrolment = Enrolment(Cards(reg, BrokerConfig(args.broker_dir)))
            claimed = enrolment.approve(args.device_id, user="cli")
            if claimed:
                print(f"device {args.device_id} approved (hardware {claimed['serial']}); "
                      f"{_said(claimed['broker_reloaded'])}")
            else:
                reg.approve(args.device_id)
                print(f"device {args.device_id} approved")
        else:
            _import(reg, args)
    return 0


def _import(reg: Registry, args: argparse.Namespace) -> None:
    """Every card is read and checked before any is imported."""
    cards = Cards(reg, BrokerConfig(args.broker_dir))
    parsed = []
    for name in args.cards:
        try:
            text = pathlib.Path(name).read_bytes()
        except OSError as exc:
            raise InvalidRequest(f"{name}: {exc.strerror}") from None
        parsed.append(cards.parse(text, source=name))
    for card in parsed:
        result = cards.import_card(card, replace=args.replace, user="cli")
        what = ("replaced: the old hardware's credentials are refused from now on"
                if result["replaced"] else "imported")
        print(f"device {card.device_id} ({card.role}) {what}; "
              f"{_said(result['broker_reloaded'])}")


def _enrol(reg: Registry, args: argparse.Namespace) -> None:
    if args.action == "create":
        made = Enrolment(Cards(reg, None)).create(
            args.device_id, args.role, hamlet=args.hamlet, desk=args.desk, label=args.label,
            ttl_s=args.ttl_h * 3600, user="cli")
        print(made["token"])
        expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(made["expires"]))
        print(f"one-time enrolment token for {args.device_id} ({args.role}), valid until "
              f"{expires}: thanthien-provision bundle {args.device_id} --role {args.role} "
              "--enrol-token TOKEN ...", file=sys.stderr)
        return
    for e in list_enrolments(reg.writer.db):
        state = "expired" if e["expired"] else e["status"]
        print(f"{e['device_id']:24} {e['role']:8} {state:8} {e['serial'] or '-'}")


def _said(reloaded: bool) -> str:
    return ("the broker has re-read its accounts." if reloaded else
            "no running broker found: reload it (systemctl reload thanthien-broker).")


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
