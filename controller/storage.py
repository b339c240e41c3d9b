"""The controller's SQLite database: opening it and migrating its schema.

Migrations are numbered functions applied in order, each in its own
transaction, recorded in ``schema_migrations``. Add a new one at the end;
never edit one that has shipped.
"""

from __future__ import annotations

import logging
import pathlib
import sqlite3
from collections.abc import Callable

import sqlite_utils

from controller.errors import StorageError

log = logging.getLogger(__name__)

Migration = Callable[[sqlite_utils.Database], None]


def connect(path: str | pathlib.Path) -> sqlite_utils.Database:
    """A connection in WAL mode with ``synchronous=FULL``: an acked event is on disk."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Event ids are random UUIDs, so their index is written all over: keep it in
    # memory (64 MiB per connection at most) rather than re-reading pages.
    conn.execute("PRAGMA cache_size=-65536")
    # No sqlite-utils plugins: loading them scans every installed package for
    # entry points we never use.
    return sqlite_utils.Database(conn, execute_plugins=False)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply pending migrations; return how many are in force.

    Migrations are recorded by name, not by position, so branches that each
    appended one can be merged in either order without a database created on
    one of them re-running (or skipping) the other's.
    """
    table = db["schema_migrations"]
    columns = {c.name for c in table.columns} if table.exists() else set()
    if columns and "name" not in columns:
        raise StorageError(
            f"database {db.conn.execute('PRAGMA database_list').fetchone()[2]} was made by a "
            "development build that numbered its migrations; move it aside and start afresh")
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY,"
               " applied TEXT DEFAULT CURRENT_TIMESTAMP)")
    done = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.conn:
            db.execute("BEGIN IMMEDIATE")
            fn(db)
            db.execute("INSERT INTO schema_migrations (name) VALUES (?)", (fn.__name__,))
        log.info("database migrated: %s", fn.__name__)
    return len(MIGRATIONS)


def execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _initial(db: sqlite_utils.Database) -> None:
    execute_script(db, _INITIAL)


_INITIAL = """
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    role TEXT,
    status TEXT NOT NULL CHECK (status IN ('approved', 'pending')),
    label TEXT,
    hamlet TEXT,
    created REAL NOT NULL,
    approved REAL,
    online INTEGER NOT NULL DEFAULT 0,
    last_seen REAL,
    sw TEXT,
    keepalive INTEGER,
    telemetry_interval REAL,
    reported_config_version INTEGER,
    desired_config_version INTEGER NOT NULL DEFAULT 0,
    desired_config TEXT,
    telemetry TEXT
);
CREATE TABLE telemetry (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices(id),
    received REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX telemetry_device ON telemetry (device, received);
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    ts TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    received REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_device_seq ON events (device, seq);
CREATE INDEX events_type ON events (type, received);
CREATE TABLE ratings (
    event_id TEXT PRIMARY KEY REFERENCES events(id),
    device TEXT NOT NULL REFERENCES devices(id),
    ts TEXT NOT NULL,
    level INTEGER NOT NULL,
    scale INTEGER NOT NULL,
    misuse INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX ratings_ts ON ratings (ts);
CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices(id),
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    created REAL NOT NULL,
    expires TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    result TEXT,
    updated REAL NOT NULL
);
CREATE INDEX commands_device ON commands (device, status);
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
)
"""


def _speaker(db: sqlite_utils.Database) -> None:
    from controller.audio_library import migrate_audio
    from controller.broadcasts import migrate_broadcasts
    migrate_audio(db)
    migrate_broadcasts(db)


#: Every schema change, in order, each known by its function's name (never rename
#: one that has shipped); append new ones.
MIGRATIONS: list[Migration] = [_initial, _speaker]

from controller.rating_schema import kiosk_schema, officer_photos  # noqa: E402

MIGRATIONS.append(kiosk_schema)
MIGRATIONS.append(officer_photos)


def rating_alert_index(db: sqlite_utils.Database) -> None:
    """The alert check counts a desk's answers in a window for every dissatisfied
    rating: a covering index makes that a short index range, not a table scan
    (which made ingestion quadratic: 328 events/s at 100,000 ratings)."""
    db.execute("CREATE INDEX IF NOT EXISTS ratings_desk_window ON ratings"
               " (coalesce(desk, device), misuse, ts, dissatisfied)")


MIGRATIONS.append(rating_alert_index)


def device_mqtt_protocol(db: sqlite_utils.Database) -> None:
    """The MQTT protocol level each device last reported in its birth: 5, or 4 for a
    node that fell back to 3.1.1 (a broker that refused 5)."""
    db.execute("ALTER TABLE devices ADD COLUMN mqtt_protocol INTEGER")


MIGRATIONS.append(device_mqtt_protocol)
