"""Every schema change, in one ordered list, recorded by name in ``schema_migrations``.

Each migration runs in its own transaction. Append new ones at the end;
never edit or rename one that has shipped: the name is what a database
remembers. The statements live in :mod:`controller.db.schema`, one module
per domain.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3

import sqlite_utils

from controller.db.schema import access, broadcasts, cameras, documents, fleet, ratings
from controller.errors import StorageError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]
    #: Rebuilds a table others refer to: run with foreign keys off, then checked
    #: (``PRAGMA foreign_key_check``) before it commits.
    rebuilds: bool = False

    def apply(self, db: sqlite_utils.Database) -> None:
        for script in self.statements:
            execute_script(db, script)


#: In order. Names are the ones the first databases recorded; keep them.
MIGRATIONS: tuple[Migration, ...] = (
    Migration("_initial", (fleet.INITIAL, ratings.INITIAL, access.INITIAL)),
    Migration("_speaker", (broadcasts.AUDIO, broadcasts.BROADCASTS)),
    Migration("kiosk_schema", (ratings.KIOSK,)),
    Migration("officer_photos", (ratings.PHOTOS,)),
    Migration("rating_alert_index", (ratings.ALERT_INDEX,)),
    Migration("device_mqtt_protocol", (fleet.MQTT_PROTOCOL,)),
    Migration("event_quarantine", (fleet.QUARANTINE,)),
    Migration("users_and_audit", (access.USERS, access.AUDIT)),
    Migration("sessions", (access.SESSIONS,)),
    Migration("device_revocation", (fleet.REVOKED,), rebuilds=True),
    Migration("alert_kinds", (ratings.ALERT_KINDS,)),
    Migration("audit_retention", (access.AUDIT_RETENTION,)),
    Migration("documents", (documents.COMMUNE_PROFILE, documents.LETTERS)),
    Migration("public_info", (ratings.PUBLIC_INFO,)),
    Migration("read_indexes", (ratings.READ_INDEXES,)),
    Migration("device_presence", (fleet.PRESENCE,)),
    Migration("cameras", (cameras.CAMERAS,)),
    Migration("enrolment", (fleet.ENROLMENT,)),
    Migration("rating_time_source", (ratings.TIME_SOURCE,)),
    Migration("sequence_anomalies", (fleet.SEQUENCE_ANOMALIES,)),
)


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
    for migration in MIGRATIONS:
        if migration.name in done:
            continue
        if migration.rebuilds:
            db.execute("PRAGMA foreign_keys=OFF")  # no effect inside a transaction
        try:
            with db.conn:
                db.execute("BEGIN IMMEDIATE")
                migration.apply(db)
                if migration.rebuilds and db.execute("PRAGMA foreign_key_check").fetchone():
                    raise StorageError(f"migration {migration.name} broke a foreign key")
                db.execute("INSERT INTO schema_migrations (name) VALUES (?)", (migration.name,))
        finally:
            if migration.rebuilds:
                db.execute("PRAGMA foreign_keys=ON")
        log.info("database migrated: %s", migration.name)
    return len(MIGRATIONS)


def execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction (executescript would commit).

    A piece is run once it is a complete statement, so a trigger's ``BEGIN ...; END``
    stays whole."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                db.execute(pending)
            pending = ""
    if pending.strip(" \n;"):
        db.execute(pending)
