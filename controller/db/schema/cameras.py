"""Schema of the desk cameras: which desk each watches, their signing keys, the chain heads
they report, the footage held and the clips uploaded (controller/cameras/)."""

CAMERAS = """
CREATE TABLE desk_cameras (
    camera TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    desk TEXT NOT NULL REFERENCES desks(id) ON DELETE CASCADE,
    updated REAL NOT NULL
);
CREATE INDEX desk_cameras_desk ON desk_cameras (desk);

CREATE TABLE camera_keys (
    camera TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    public_key TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    accepted REAL,
    accepted_by TEXT,
    PRIMARY KEY (camera, public_key)
);
CREATE UNIQUE INDEX camera_keys_pinned ON camera_keys (camera) WHERE pinned = 1;

CREATE TABLE footage_heads (
    camera TEXT NOT NULL,
    seq INTEGER NOT NULL,
    chain TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    received REAL NOT NULL,
    checked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (camera, seq)
) WITHOUT ROWID;
CREATE INDEX footage_heads_unchecked ON footage_heads (received) WHERE checked = 0;
CREATE INDEX footage_heads_end ON footage_heads ("end");

CREATE TABLE camera_holds (
    id TEXT PRIMARY KEY,
    camera TEXT NOT NULL REFERENCES devices(id),
    desk TEXT,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    reason TEXT NOT NULL,
    rating_id TEXT REFERENCES ratings(event_id),
    created REAL NOT NULL,
    created_by TEXT,
    expires REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('requested', 'waiting', 'held', 'released', 'expired', 'missing')),
    segments INTEGER,
    bytes INTEGER,
    updated REAL NOT NULL
);
CREATE INDEX camera_holds_camera ON camera_holds (camera, start);
CREATE INDEX camera_holds_created ON camera_holds (created);
CREATE INDEX camera_holds_state ON camera_holds (state, expires);
CREATE INDEX camera_holds_rating ON camera_holds (rating_id) WHERE rating_id IS NOT NULL;

CREATE TABLE clips (
    hold TEXT PRIMARY KEY REFERENCES camera_holds(id),
    camera TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('requested', 'uploading', 'received', 'verified', 'failed', 'deleted')),
    bytes INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    segments INTEGER,
    problems TEXT NOT NULL DEFAULT '[]',
    path TEXT,
    video INTEGER NOT NULL DEFAULT 0,
    requested REAL NOT NULL,
    requested_by TEXT,
    verified REAL,
    updated REAL NOT NULL
);
CREATE INDEX clips_verified ON clips (verified) WHERE verified IS NOT NULL;

ALTER TABLE alerts ADD COLUMN detail TEXT
"""
