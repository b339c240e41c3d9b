"""Opening a node's SQLite file so that what it accepted survives a power cut."""

from __future__ import annotations

import pathlib
import sqlite3
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from node_runtime.errors import OutboxError


def _import_sqlite_utils() -> ModuleType:
    """sqlite-utils, imported with numpy and pandas hidden.

    sqlite-utils imports numpy and pandas whenever they are installed, only to
    map their types to columns. A node stores neither, and numpy alone is
    ~11 MB of a node's memory (a Pi 3 has 1 GB, a Zero 2 W 512 MB). Modules
    already imported are left alone, and hiding them ends with this import:
    later ``import numpy`` works as usual.
    """
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes import raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            del sys.modules[name]
    return sqlite_utils


if TYPE_CHECKING:
    import sqlite_utils
else:
    sqlite_utils = _import_sqlite_utils()


def open_durable(path: str | pathlib.Path) -> sqlite_utils.Database:
    """A WAL database whose every commit is fsync'd (``synchronous=FULL``).

    Autocommit mode: each statement outside ``with db.conn:`` is its own
    durable transaction. The connection is shared between threads; callers
    serialise access with their own lock.
    """
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except (OSError, sqlite3.Error) as exc:
        raise OutboxError(f"cannot open node database {path}: {exc}") from None
    # No sqlite-utils plugins: loading them scans every installed package (and half
    # a megabyte of a node's memory) for entry points we never use.
    return sqlite_utils.Database(conn, execute_plugins=False)
