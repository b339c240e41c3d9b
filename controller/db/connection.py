"""Opening the controller's SQLite file: one write connection, a bounded pool of readers.

WAL lets readers run beside the single writer. Readers come from a
:class:`ReaderPool` of a fixed size: however many HTTP connections or
threads ask, the controller never holds more than ``size`` read connections
(each one is two or three file descriptors and its own page cache).
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlite_utils

from controller.errors import StorageError

log = logging.getLogger(__name__)


def connect(path: str | pathlib.Path, *, cache_mib: int = 64) -> sqlite_utils.Database:
    """A connection in WAL mode with ``synchronous=FULL``: an acked event is on disk."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Event ids are random UUIDs, so their index is written all over: keep it in
        # memory rather than re-reading pages.
        conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StorageError(f"database {path}: {exc}") from exc
    # No sqlite-utils plugins: loading them scans every installed package for
    # entry points we never use.
    return sqlite_utils.Database(conn, execute_plugins=False)


def check_or_set_aside(path: pathlib.Path) -> pathlib.Path | None:
    """``PRAGMA quick_check`` the file; if it is corrupt, move it (with its WAL) aside.

    Returns where the corrupt file went, or None when the file was sound or
    absent. A corrupt database must not crash-loop the service: it starts on
    a fresh file and the health API names the one set aside.
    """
    if not path.exists():
        return None
    problem: str | None = None
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                problem = "; ".join(str(r[0]) for r in rows[:5])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    if problem is None:
        return None
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        source = pathlib.Path(str(path) + suffix)
        if source.exists():
            source.rename(pathlib.Path(str(aside) + suffix))
    log.error("database %s is corrupt (%s): moved to %s, starting on a new file",
              path, problem, aside)
    return aside


class ReaderPool:
    """At most ``size`` read connections, lent one at a time.

    ``with pool.connection() as db:`` borrows one (waiting up to ``timeout``
    seconds when all are lent). :meth:`execute` borrows one for a single
    statement and returns its rows, for callers that read one thing.
    """

    def __init__(self, path: str | pathlib.Path, size: int = 8, *, timeout: float = 30.0,
                 cache_mib: int = 8):
        self.path = pathlib.Path(path)
        self.size = size
        self.timeout = timeout
        self._cache_mib = cache_mib
        self._idle: queue.LifoQueue[sqlite_utils.Database] = queue.LifoQueue()
        self._made = 0
        self._lock = threading.Lock()
        self._closed = False
        self._all: list[sqlite_utils.Database] = []
        self._held = threading.local()

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite_utils.Database]:
        """Borrow a connection for this thread; a thread that already holds one gets the
        same one again (so nested reads cannot wait on themselves)."""
        held = getattr(self._held, "db", None)
        if held is not None:
            yield held
            return
        db = self._borrow()
        self._held.db = db
        try:
            yield db
        finally:
            self._held.db = None
            if db.conn.in_transaction:
                db.conn.rollback()
            self._idle.put(db)

    def _borrow(self) -> sqlite_utils.Database:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise StorageError("the database is closed")
            if self._made < self.size:
                self._made += 1
                try:
                    db = connect(self.path, cache_mib=self._cache_mib)
                except Exception:
                    self._made -= 1
                    raise
                self._all.append(db)
                return db
        try:
            return self._idle.get(timeout=self.timeout)
        except queue.Empty:
            raise StorageError(f"no database reader free within {self.timeout} s") from None

    def execute(self, sql: str, params: Any = ()) -> Rows:
        """Run one read statement on a borrowed connection; its rows, already fetched."""
        with self.connection() as db:
            cursor = db.execute(sql, params)
            return Rows(cursor.fetchall())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for db in self._all:
                db.close()
            self._all.clear()


class Rows:
    """Fetched rows with the cursor methods callers use (``fetchone``, ``fetchall``)."""

    def __init__(self, rows: list[tuple[Any, ...]]):
        self._rows = rows
        self._next = 0

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())
