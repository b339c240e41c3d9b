"""API bearer tokens: random, shown once, stored only as SHA-256 hashes.

Tokens carry 256 random bits, so an unsalted SHA-256 cannot be reversed or
brute-forced; comparison happens on hashes looked up by index.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import sqlite_utils

from controller.access.roles import ADMIN, Caller, check_role
from controller.access.users import add_user
from controller.errors import InvalidRequest, Unauthorized, _t

PREFIX = "tt_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: sqlite_utils.Database, name: str, role: str | None = None) -> str:
    """Create (or replace) the token called ``name`` and return it; it is not stored.

    The token belongs to the user ``name`` and acts with its role: an existing user
    keeps theirs unless ``role`` is given; a new one gets ``role`` (``admin`` if none).
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest(_t("token name {name!r}: use letters, digits, '-' and '_'"),
                             name=name)
    existing = db.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
    if role is not None or existing is None:
        add_user(db, name, check_role(role or ADMIN))
    token = PREFIX + secrets.token_urlsafe(32)
    db.execute("INSERT OR REPLACE INTO api_tokens (name, hash, created, user) VALUES (?, ?, ?, ?)",
               (name, _hash(token), time.time(), name))
    return token


def check_token(db: sqlite_utils.Database, header: str | None) -> Caller:
    """Who an ``Authorization: Bearer`` header is (its user and role), else raise."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized(_t("missing 'Authorization: Bearer <token>' header"))
    row = db.execute("SELECT u.name, u.role FROM api_tokens t JOIN users u ON u.name = t.user"
                     " WHERE t.hash = ? AND u.disabled = 0",
                     (_hash(header[7:].strip()),)).fetchone()
    if row is None:
        raise Unauthorized(_t("unknown or revoked API token"))
    return Caller(str(row[0]), str(row[1]))


def revoke_token(db: sqlite_utils.Database, name: str) -> bool:
    return db.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount > 0


def list_tokens(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every token's name, its user and that user's role, and when it was created (the
    tokens themselves are not kept)."""
    rows = db.execute("SELECT t.name, t.user, u.role, t.created FROM api_tokens t"
                      " LEFT JOIN users u ON u.name = t.user ORDER BY t.name").fetchall()
    return [{"name": r[0], "user": r[1], "role": r[2], "created": r[3]} for r in rows]
