"""API bearer tokens: random, shown once, stored only as SHA-256 hashes.

Tokens carry 256 random bits, so an unsalted SHA-256 cannot be reversed or
brute-forced; comparison happens on hashes looked up by index.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlite_utils

from controller.errors import InvalidRequest, Unauthorized

PREFIX = "tt_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: sqlite_utils.Database, name: str) -> str:
    """Create (or replace) the token called ``name`` and return it; it is not stored."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest(f"token name {name!r}: use letters, digits, '-' and '_'")
    token = PREFIX + secrets.token_urlsafe(32)
    db.execute("INSERT OR REPLACE INTO api_tokens (name, hash, created) VALUES (?, ?, ?)",
               (name, _hash(token), time.time()))
    return token


def check_token(db: sqlite_utils.Database, header: str | None) -> str:
    """Return the token's name for an ``Authorization: Bearer`` header, else raise."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    row = db.execute("SELECT name FROM api_tokens WHERE hash = ?",
                     (_hash(header[7:].strip()),)).fetchone()
    if row is None:
        raise Unauthorized("unknown or revoked API token")
    return str(row[0])


def revoke_token(db: sqlite_utils.Database, name: str) -> bool:
    return db.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount > 0
