"""Schema of access to the API: bearer tokens (SHA-256 hashes only)."""

INITIAL = """
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
)
"""

#: People with a role; tokens belong to one. Tokens made before users existed become
#: their own admin users (they could do everything then).
USERS = """
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'leader', 'technician')),
    password TEXT,
    created REAL NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE api_tokens ADD COLUMN user TEXT REFERENCES users(name);
INSERT INTO users (name, role, created) SELECT name, 'admin', created FROM api_tokens;
UPDATE api_tokens SET user = name
"""

#: Every state-changing request: who, what, when, from where, and the answer. The
#: triggers make it append-only, even for a program with the database file.
AUDIT = """
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    user TEXT,
    role TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    address TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
"""

#: Signed-in browsers: the SHA-256 of each session cookie, its CSRF token, its times.
SESSIONS = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    address TEXT
);
CREATE INDEX sessions_user ON sessions (user)
"""

#: The audit log's retention (controller.access.audit): an entry may be deleted once
#: older than 730 days, or 90 days for an anonymous one; younger, never.
AUDIT_RETENTION = """
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN old.at > CAST(strftime('%s', 'now') AS REAL)
              - (CASE WHEN old.user IS NULL THEN 90 ELSE 730 END) * 86400
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
"""
