"""Signed-in people in a browser: sessions with an idle expiry, CSRF tokens, and a lockout
after repeated wrong passwords.

The cookie holds 256 random bits; the database keeps only its SHA-256. A
session ends after ``idle_s`` without a request, after ``max_age_s`` in any
case, or at logout. Every state-changing request made with the cookie must
carry the session's CSRF token (``X-CSRF-Token``), which a page on another
site cannot read. Five wrong passwords for a name, or from an address, lock
further attempts for 15 minutes (kept in memory, bounded).
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import threading
import time
from collections.abc import Callable

import sqlite_utils

from controller.access.roles import Caller
from controller.access.users import check_password
from controller.db.writer import Writer
from controller.errors import Busy, Unauthorized, _t

COOKIE = "tt_session"
CSRF_HEADER = "x-csrf-token"
IDLE_S = 30 * 60
MAX_AGE_S = 12 * 3600
LOCK_AFTER = 5
LOCK_S = 15 * 60
_TRACKED = 10_000  # names and addresses whose failures are remembered


class LockedOut(Busy):
    """Too many wrong passwords: sign-in refused for a while."""


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    """Signs people in and out and says who a cookie belongs to."""

    def __init__(self, writer: Writer, *, idle_s: float = IDLE_S, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.time):
        self.writer = writer
        self.idle_s, self.max_age_s, self.clock = idle_s, max_age_s, clock
        self._failures: collections.OrderedDict[str, list[float]] = collections.OrderedDict()
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def login(self, db: sqlite_utils.Database, name: str, password: str,
              address: str | None) -> tuple[str, str, Caller]:
        """(cookie, CSRF token, caller) for a right name and password, else raise."""
        keys = [f"user:{name}", f"address:{address}"]
        self._check_locked(keys)
        try:
            caller = check_password(db, name, password)
        except Unauthorized:
            self._fail(keys)
            raise
        with self._lock:
            for key in keys[:1]:
                self._failures.pop(key, None)
        cookie, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock()
        self.writer.call(lambda db: db.execute(
            "INSERT INTO sessions (id, user, csrf, created, last_seen, address)"
            " VALUES (?, ?, ?, ?, ?, ?)", (_hash(cookie), caller.name, csrf, now, now, address)))
        return cookie, csrf, caller

    def check(self, db: sqlite_utils.Database, cookie: str) -> tuple[Caller, str]:
        """(caller, CSRF token) of a live session; Unauthorized if none."""
        key, now = _hash(cookie), self.clock()
        row = db.execute("SELECT u.name, u.role, s.csrf, s.created, s.last_seen FROM sessions s"
                         " JOIN users u ON u.name = s.user WHERE s.id = ? AND u.disabled = 0",
                         (key,)).fetchone()
        if row is None:
            raise Unauthorized(_t("not signed in (or the session ended)"))
        last = max(row[4], self._touched.get(key, 0.0))
        if now - last > self.idle_s or now - row[3] > self.max_age_s:
            raise Unauthorized(_t("the session has expired: sign in again"))
        if now - last > 60:  # note activity at most once a minute
            self._touched[key] = now
            self.writer.submit(lambda db: db.execute(
                "UPDATE sessions SET last_seen = ? WHERE id = ?", (now, key)))
        return Caller(str(row[0]), str(row[1])), str(row[2])

    def logout(self, cookie: str) -> None:
        self._touched.pop(_hash(cookie), None)
        self.writer.call(lambda db: db.execute("DELETE FROM sessions WHERE id = ?",
                                               (_hash(cookie),)))

    def prune(self) -> int:
        """Delete sessions that have ended; return how many."""
        now = self.clock()
        return int(self.writer.call(lambda db: db.execute(
            "DELETE FROM sessions WHERE last_seen < ? OR created < ?",
            (now - self.idle_s, now - self.max_age_s)).rowcount))

    def _check_locked(self, keys: list[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < LOCK_S]
                if len(recent) >= LOCK_AFTER:
                    error = LockedOut(
                        _t("too many wrong passwords; try again in {minutes} minutes"),
                        minutes=int(LOCK_S - (now - recent[-LOCK_AFTER])) // 60 + 1)
                    error.retry_after_s = LOCK_S - (now - recent[-LOCK_AFTER])
                    raise error

    def _fail(self, keys: list[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, []).append(now)
                self._failures.move_to_end(key)
                del self._failures[key][:-LOCK_AFTER]
            while len(self._failures) > _TRACKED:
                self._failures.popitem(last=False)
