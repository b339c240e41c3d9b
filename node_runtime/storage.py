"""Opening a node's SQLite file so that what it accepted survives a power cut."""

from __future__ import annotations

import os
import pathlib
import sqlite3

from node_runtime.errors import OutboxError


def open_durable(path: str | pathlib.Path) -> sqlite3.Connection:
    """A WAL database whose every commit is fsync'd (``synchronous=FULL``).

    Autocommit mode: each statement outside ``with db:`` is its own durable
    transaction. The connection is shared between threads; callers serialise
    access with their own lock. Plain :mod:`sqlite3`, not sqlite-utils as on the
    controller: a node writes a few fixed tables with plain SQL, and sqlite-utils
    with what it imports (click, dateutil, pluggy) would cost every node about
    4 MB of resident memory.
    """
    path = pathlib.Path(path)
    try:
        # The node's folder holds its events (citizens' ratings): the node's alone.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except (OSError, sqlite3.Error) as exc:
        raise OutboxError(f"cannot open node database {path}: {exc}") from None
    return conn


def fsync_dir(path: str | pathlib.Path) -> None:
    """Make a rename or a new file in ``path`` durable: fsync the directory itself."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside_if_corrupt(path: str | pathlib.Path) -> str | None:
    """If the SQLite file at ``path`` cannot be read (a power cut mid-write on a cheap SD
    card, a bad sector), rename it and its WAL aside (``<name>.corrupt-<UTC time>``) so a
    fresh one is started instead of the node failing at every restart; return what was
    wrong (None: the file is sound or absent). The damaged file is kept for a technician."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
        if result == "ok":
            return None
        reason = f"quick_check: {result}"
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
    import time
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, path.with_name(f"{path.name}.corrupt-{stamp}{suffix}"))
    fsync_dir(path.parent)
    return f"{path.name} could not be read ({reason}): set aside as {path.name}.corrupt-{stamp}"
