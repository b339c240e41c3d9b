"""Schema of the fleet: devices, their telemetry, events received, commands sent."""

INITIAL = """
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
CREATE INDEX commands_device ON commands (device, status)
"""

#: The MQTT protocol level each device last reported in its birth: 5, or 4 for a
#: node that fell back to 3.1.1 (a broker that refused 5).
MQTT_PROTOCOL = "ALTER TABLE devices ADD COLUMN mqtt_protocol INTEGER"

#: Events kept and acknowledged but not processed: their data could not be handled.
QUARANTINE = """
CREATE TABLE quarantine (
    event_id TEXT PRIMARY KEY REFERENCES events(id),
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    reason TEXT NOT NULL,
    quarantined REAL NOT NULL
);
CREATE INDEX quarantine_time ON quarantine (quarantined)
"""

#: A revoked device (its broker account removed): kept with its history, refused.
#: SQLite cannot change a CHECK constraint in place: the table is rebuilt (with
#: foreign keys off, as SQLite's documented procedure asks; see migrations).
REVOKED = """
CREATE TABLE devices_new (
    id TEXT PRIMARY KEY,
    role TEXT,
    status TEXT NOT NULL CHECK (status IN ('approved', 'pending', 'revoked')),
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
    telemetry TEXT,
    mqtt_protocol INTEGER,
    revoked REAL
);
INSERT INTO devices_new (id, role, status, label, hamlet, created, approved, online, last_seen,
    sw, keepalive, telemetry_interval, reported_config_version, desired_config_version,
    desired_config, telemetry, mqtt_protocol)
  SELECT id, role, status, label, hamlet, created, approved, online, last_seen, sw, keepalive,
    telemetry_interval, reported_config_version, desired_config_version, desired_config,
    telemetry, mqtt_protocol FROM devices;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices
"""

#: When each device was online (see :mod:`controller.fleet.presence`), and since when
#: this is known. Devices online at the migration start an interval then.
PRESENCE = """
CREATE TABLE device_presence (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices(id),
    since REAL NOT NULL,
    until REAL,
    CHECK (until IS NULL OR until >= since)
);
CREATE INDEX device_presence_device ON device_presence (device, since);
CREATE INDEX device_presence_until ON device_presence (until);
CREATE TABLE presence_tracking (started REAL NOT NULL);
INSERT INTO presence_tracking (started) VALUES ((julianday('now') - 2440587.5) * 86400.0);
INSERT INTO device_presence (device, since)
  SELECT id, (julianday('now') - 2440587.5) * 86400.0 FROM devices WHERE online = 1
"""

#: Provisioning (see :mod:`controller.fleet.cards` and :mod:`controller.fleet.enrolment`):
#: each device's hardware serial and when its credentials were last (re)issued; one-time
#: enrolment tokens (their SHA-256 only) and the claims made with them.
ENROLMENT = """
ALTER TABLE devices ADD COLUMN serial TEXT;
ALTER TABLE devices ADD COLUMN credentials_issued REAL;
CREATE TABLE enrolments (
    token_sha256 TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    role TEXT NOT NULL,
    hamlet TEXT,
    desk TEXT,
    label TEXT,
    created REAL NOT NULL,
    created_by TEXT,
    expires REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'approved', 'refused')),
    claimed REAL,
    serial TEXT,
    model TEXT,
    password_hash TEXT,
    approved REAL,
    approved_by TEXT
);
CREATE INDEX enrolments_device ON enrolments (device_id, status)
"""

#: Gaps and resets in devices' event sequence numbers (see
#: :mod:`controller.fleet.sequence`).
SEQUENCE_ANOMALIES = """
CREATE TABLE sequence_anomalies (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pending', 'gap', 'reset')),
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    missing INTEGER,
    detected REAL NOT NULL,
    detail TEXT
);
CREATE INDEX sequence_anomalies_device ON sequence_anomalies (device, detected)
"""
