"""Schema of access to the API: bearer tokens (SHA-256 hashes only)."""

INITIAL = """
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
)
"""
