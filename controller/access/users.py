"""People who use the controller: a name, one role, and a password (argon2) for the
console. API tokens belong to a user and act with its role."""

from __future__ import annotations

import re
import time
from typing import Any

import sqlite_utils

from controller.access.roles import Caller, check_role
from controller.errors import InvalidRequest, NotFound, Unauthorized, _t

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MIN_PASSWORD = 10


def _hasher() -> Any:
    from argon2 import PasswordHasher
    return PasswordHasher()


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidRequest(_t("user name {name!r}: expected 1-63 letters, digits, '.', '_',"
                                " '-'"), name=name)
    return name


def add_user(db: sqlite_utils.Database, name: str, role: str,
             password: str | None = None) -> dict[str, Any]:
    """Create a user, or change an existing one's role (and password, if given)."""
    check_name(name)
    check_role(role)
    hashed = None
    if password is not None:
        if len(password) < MIN_PASSWORD:
            raise InvalidRequest(_t("password of {length} characters: at least {minimum} needed"),
                                 length=len(password), minimum=MIN_PASSWORD)
        hashed = _hasher().hash(password)
    db.execute("INSERT INTO users (name, role, password, created) VALUES (?, ?, ?, ?)"
               " ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
               " password = coalesce(excluded.password, password)",
               (name, role, hashed, time.time()))
    return get_user(db, name)


def update_user(db: sqlite_utils.Database, name: str, *, role: str | None = None,
                password: str | None = None) -> dict[str, Any]:
    """Change an existing user's role and/or password; NotFound for an unknown one."""
    current = get_user(db, name)
    return add_user(db, name, role or current["role"], password)


def get_user(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    row = db.execute("SELECT name, role, password IS NOT NULL, created, disabled FROM users"
                     " WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(_t("no user {name!r}"), name=name)
    return {"name": row[0], "role": row[1], "has_password": bool(row[2]), "created": row[3],
            "disabled": bool(row[4])}


def list_users(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [get_user(db, r[0]) for r in db.execute("SELECT name FROM users ORDER BY name")]


def check_password(db: sqlite_utils.Database, name: str, password: str) -> Caller:
    """The caller for a correct name and password; Unauthorized (the same message
    whichever was wrong) otherwise."""
    from argon2.exceptions import VerificationError
    row = db.execute("SELECT role, password FROM users WHERE name = ? AND disabled = 0",
                     (name,)).fetchone()
    try:
        if row is None or row[1] is None:
            raise VerificationError()
        _hasher().verify(row[1], password)
    except VerificationError:
        raise Unauthorized(_t("wrong user name or password")) from None
    return Caller(name, str(row[0]))
