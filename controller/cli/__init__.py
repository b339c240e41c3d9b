"""``thanthien-controller``: run the service, set up an office machine, manage tokens,
devices, the broker, audio and broadcasts.

Thin: reads argv and environment, builds objects, turns library errors into
messages a person reads. Each command is a module here with ``add_parser``
and ``run``.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
from collections.abc import Sequence

from controller.cli import backup, broadcasts, broker, devices, serve, setup, tokens
from wire.errors import ThanthienError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thanthien-controller",
                                     description="The commune's device controller.")
    parser.add_argument("--data", default=os.environ.get("THANTHIEN_DATA", "/var/lib/thanthien"),
                        help="folder of the controller's database (default %(default)s)")
    parser.add_argument("--log-level", default=os.environ.get("THANTHIEN_LOG", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (serve, setup, tokens, devices, broadcasts, broker, backup):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = pathlib.Path(args.data)
    try:
        return _run(args, data)
    except (ThanthienError, OSError) as exc:
        parser.exit(2, f"thanthien-controller: {exc}\n")
    return 0


def _run(args: argparse.Namespace, data: pathlib.Path) -> int:
    if args.command == "serve":
        return serve.run(args, data)
    if args.command == "setup":
        return setup.run(args, data)
    if args.command in ("token", "user"):
        return tokens.run(args, data)
    if args.command == "broker":
        return broker.run(args)
    if args.command == "backup":
        return backup.run(args, data)
    if args.command in ("audio", "broadcast"):
        return broadcasts.run(args, data)
    return devices.run(args, data)


if __name__ == "__main__":
    sys.exit(main())
