"""Schema for the kiosk's side of the controller: officers, desks, roster, alerts, cases.

Also gives ``ratings`` the columns that statistics filter and group on
(desk, officer, local day and hour, reasons), filled at ingest from the
event's data so queries never parse JSON row by row.
"""

from __future__ import annotations

import sqlite_utils

_SCHEMA = """
ALTER TABLE ratings ADD COLUMN kiosk TEXT;
ALTER TABLE ratings ADD COLUMN desk TEXT;
ALTER TABLE ratings ADD COLUMN officer TEXT;
ALTER TABLE ratings ADD COLUMN local_day TEXT;
ALTER TABLE ratings ADD COLUMN local_hour INTEGER;
ALTER TABLE ratings ADD COLUMN satisfied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ratings ADD COLUMN dissatisfied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ratings ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ratings ADD COLUMN dossier_code TEXT;
CREATE INDEX ratings_desk_ts ON ratings (desk, ts);
CREATE INDEX ratings_officer_ts ON ratings (officer, ts);
CREATE TABLE officers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    phone TEXT,
    photo TEXT,
    created REAL NOT NULL
);
CREATE TABLE desks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kiosk TEXT UNIQUE REFERENCES devices(id),
    created REAL NOT NULL
);
CREATE TABLE roster (
    id INTEGER PRIMARY KEY,
    desk TEXT NOT NULL REFERENCES desks(id) ON DELETE CASCADE,
    officer TEXT NOT NULL REFERENCES officers(id) ON DELETE CASCADE,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    CHECK (end > start)
);
CREATE INDEX roster_desk ON roster (desk, start);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    desk TEXT NOT NULL,
    ts TEXT NOT NULL,
    window_start TEXT NOT NULL,
    answers INTEGER NOT NULL,
    negative INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX alerts_desk_ts ON alerts (desk, ts);
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    window_s REAL NOT NULL,
    min_answers INTEGER NOT NULL,
    negative_share REAL NOT NULL
);
CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    rating_id TEXT NOT NULL UNIQUE REFERENCES ratings(event_id),
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'contacted', 'closed')),
    note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX cases_status ON cases (status, created);
CREATE TABLE screenshots (
    token TEXT PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices(id),
    requested REAL NOT NULL,
    received REAL,
    png BLOB
);
CREATE INDEX screenshots_device ON screenshots (device, received)
"""


_PHOTOS = """
CREATE TABLE officer_photos (
    officer TEXT PRIMARY KEY REFERENCES officers(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX officer_photos_sha ON officer_photos (sha256)
"""


def _run(db: sqlite_utils.Database, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def kiosk_schema(db: sqlite_utils.Database) -> None:
    """Migration: rating columns for statistics, and the kiosk-side tables."""
    _run(db, _SCHEMA)


def officer_photos(db: sqlite_utils.Database) -> None:
    """Migration: officers' photos, which kiosks fetch by hash."""
    _run(db, _PHOTOS)
