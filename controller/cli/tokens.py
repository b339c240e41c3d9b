"""``thanthien-controller token create|revoke NAME`` and ``user add|list``: the people and
programs that use the API, each with one role."""

from __future__ import annotations

import argparse
import getpass
import pathlib
import sys
from typing import Any

from controller.access import tokens, users
from controller.access.roles import ROLES
from controller.cli.serve import DB_NAME
from controller.db.writer import open_writer


def add_parser(sub: Any) -> None:
    token = sub.add_parser("token", help="create or revoke an API token")
    token.add_argument("action", choices=("create", "revoke"))
    token.add_argument("name", help="the user the token acts for (created if new)")
    token.add_argument("--role", choices=ROLES,
                       help="the user's role (a new user without --role is an admin)")
    user = sub.add_parser("user", help="people who use the console and the API")
    usub = user.add_subparsers(dest="action", required=True)
    add = usub.add_parser("add", help="add a user, or change one's role or password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-file", help="read the password from this file "
                     "(default: ask for it; '-' reads standard input)")
    add.add_argument("--no-password", action="store_true",
                     help="a user who only uses API tokens")
    usub.add_parser("list", help="list users and roles")


def run(args: argparse.Namespace, data: pathlib.Path) -> int:
    if args.command == "user":
        return _user(args, data)
    with open_writer(data / DB_NAME) as writer:
        if args.action == "create":
            print(writer.call(lambda db: tokens.create_token(db, args.name, args.role)))
        elif not writer.call(lambda db: tokens.revoke_token(db, args.name)):
            print(f"no token named {args.name!r}", file=sys.stderr)
            return 1
    return 0


def _user(args: argparse.Namespace, data: pathlib.Path) -> int:
    with open_writer(data / DB_NAME) as writer:
        if args.action == "list":
            for u in users.list_users(writer.db):
                print(f"{u['name']:24} {u['role']:11} "
                      f"{'password' if u['has_password'] else 'tokens only'}")
            return 0
        password = None if args.no_password else _password(args.password_file)
        user = writer.call(lambda db: users.add_user(db, args.name, args.role, password))
    print(f"user {user['name']}: {user['role']}")
    return 0


def _password(source: str | None) -> str:
    if source == "-":
        return sys.stdin.readline().rstrip("\n")
    if source:
        return pathlib.Path(source).read_text().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("thanthien-controller: the two passwords differ")
    return first
