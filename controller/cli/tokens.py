"""``thanthien-controller token create|revoke NAME``: API tokens for people and programs."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from controller.access import tokens
from controller.cli.serve import DB_NAME
from controller.db.writer import open_writer


def add_parser(sub: Any) -> None:
    token = sub.add_parser("token", help="create or revoke an API token")
    token.add_argument("action", choices=("create", "revoke"))
    token.add_argument("name")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    with open_writer(data / DB_NAME) as writer:
        if args.action == "create":
            print(writer.call(lambda db: tokens.create_token(db, args.name)))
        elif not writer.call(lambda db: tokens.revoke_token(db, args.name)):
            print(f"no token named {args.name!r}", file=sys.stderr)
            return 1
    return 0
