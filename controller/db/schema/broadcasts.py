"""Schema of the loudspeakers: the audio library, broadcast items, volumes, receipts."""

AUDIO = """
CREATE TABLE audio (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL, filename TEXT, format TEXT NOT NULL,
    source_sha256 TEXT NOT NULL, source_bytes INTEGER NOT NULL,
    duration_s REAL NOT NULL, loudness_lufs REAL NOT NULL, gain_db REAL NOT NULL,
    target_lufs REAL NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    created REAL NOT NULL
)
"""

BROADCASTS = """
CREATE TABLE broadcasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,
    audio_id INTEGER NOT NULL REFERENCES audio(id), level TEXT NOT NULL,
    start TEXT NOT NULL, rrule TEXT, repeat_s REAL, expires TEXT,
    targets TEXT NOT NULL, overlap TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL, cancelled REAL
);
CREATE TABLE speaker_volumes (
    scope TEXT NOT NULL, key TEXT NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE playback_receipts (
    device TEXT NOT NULL, occurrence TEXT NOT NULL, broadcast_id INTEGER,
    status TEXT NOT NULL, reason TEXT, scheduled TEXT, started TEXT, ended TEXT,
    played_s REAL, event_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (device, occurrence)
);
CREATE INDEX playback_receipts_broadcast ON playback_receipts (broadcast_id);
CREATE TABLE speaker_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""
