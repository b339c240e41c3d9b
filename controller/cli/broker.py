"""``thanthien-controller broker init``: write the Mosquitto configuration by hand
(``setup`` does this and more for a new office machine)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from controller.broker import CONTROLLER_USER, BrokerConfig
from controller.errors import BrokerError
from provisioning.identity import new_password


def add_parser(sub: Any) -> None:
    broker = sub.add_parser("broker", help="write the Mosquitto configuration")
    bsub = broker.add_subparsers(dest="action", required=True)
    init = bsub.add_parser("init", help="config, ACL, and the controller's broker account")
    init.add_argument("--broker-dir", required=True)
    init.add_argument("--host", default="127.0.0.1", help="address to listen on")
    init.add_argument("--port", type=int, default=1883)
    init.add_argument("--tls-cert", help="server certificate (turns TLS on)")
    init.add_argument("--tls-key", help="server key")



def run(args: argparse.Namespace) -> int:
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

