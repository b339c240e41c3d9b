"""``thanthien-provision``: make a device's identity and node file, offline if need be."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence

from provisioning.identity import new_identity
from provisioning.node_file import node_file_text
from wire.errors import ThanthienError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thanthien-provision", description=__doc__)
    parser.add_argument("device_id")
    parser.add_argument("--role", required=True, choices=("kiosk", "speaker", "camera"))
    parser.add_argument("--hamlet")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--mqtt-tls-ca", help="the commune CA's path on the device: TLS on")
    parser.add_argument("--data-dir", default="/var/lib/thanthien")
    parser.add_argument("--out", required=True, help="folder for node.toml and broker-account")
    args = parser.parse_args(argv)
    try:
        identity = new_identity(args.device_id, args.role, hamlet=args.hamlet)
    except ThanthienError as exc:
        parser.exit(2, f"thanthien-provision: {exc}\n")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    node_file = out / "node.toml"
    node_file.write_text(node_file_text(identity, mqtt_host=args.mqtt_host,
                                        mqtt_port=args.mqtt_port, data_dir=args.data_dir,
                                        tls_ca=args.mqtt_tls_ca))
    os.chmod(node_file, 0o600)
    (out / "broker-account").write_text(f"{identity.device_id}:{identity.password_hash}\n")
    print(f"wrote {node_file} and {out / 'broker-account'} (import it with "
          "'thanthien-controller device import')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
