"""Schema of the commune's documents: its profile (the letterhead and signer) and the
apology letters staff prepare for follow-up cases."""

#: One row (``id = 1``): what every document's header and signature block say. Without
#: the row the defaults of :mod:`controller.documents.commune` apply.
COMMUNE_PROFILE = """
CREATE TABLE commune_profile (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    district TEXT NOT NULL,
    province TEXT NOT NULL,
    place TEXT NOT NULL,
    leader_name TEXT NOT NULL,
    leader_position TEXT NOT NULL,
    signing_for TEXT NOT NULL,
    letter_symbol TEXT NOT NULL,
    report_symbol TEXT NOT NULL,
    report_recipients TEXT NOT NULL,
    updated REAL NOT NULL
)
"""

#: A case's apology letter as staff edited it (NULL fields: the default drawn from the
#: case), and how often it was generated; the first generation counts as "letter sent".
LETTERS = """
CREATE TABLE letters (
    case_id INTEGER PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
    recipient TEXT,
    what_went_wrong TEXT,
    remedy TEXT,
    number TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    generated INTEGER NOT NULL DEFAULT 0,
    first_generated REAL,
    last_generated REAL
);
CREATE INDEX letters_first_generated ON letters (first_generated)
"""
