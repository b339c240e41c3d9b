"""Schema of citizens' ratings and what follows them: officers, desks, roster, alerts, cases.

The kiosk migration gives ``ratings`` the columns that statistics filter and group on
(desk, officer, local day and hour, reasons), filled at ingest from the
event's data so queries never parse JSON row by row.
"""

INITIAL = """
CREATE TABLE ratings (
    event_id TEXT PRIMARY KEY REFERENCES events(id),
    device TEXT NOT NULL REFERENCES devices(id),
    ts TEXT NOT NULL,
    level INTEGER NOT NULL,
    scale INTEGER NOT NULL,
    misuse INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL
);
CREATE INDEX ratings_ts ON ratings (ts)
"""

KIOSK = """
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


PHOTOS = """
CREATE TABLE officer_photos (
    officer TEXT PRIMARY KEY REFERENCES officers(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX officer_photos_sha ON officer_photos (sha256)
"""


#: The alert check counts a desk's answers in a window for every dissatisfied rating:
#: a covering index makes that a short index range, not a table scan (which made
#: ingestion quadratic: 328 events/s at 100,000 ratings).
ALERT_INDEX = ("CREATE INDEX IF NOT EXISTS ratings_desk_window ON ratings"
               " (coalesce(desk, device), misuse, ts, dissatisfied)")

#: Alerts of more than one kind: ``negative`` (many dissatisfied answers at a desk) and
#: ``pace`` (one kiosk rated far faster than a desk serves: ballot stuffing). The index
#: lets the pace check count a kiosk's last hour without scanning.
ALERT_KINDS = """
ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'negative';
CREATE INDEX ratings_device_ts ON ratings (device, ts)
"""

#: The commune's public information (officials' phone numbers, hotline, notices): one
#: JSON document, pushed to every kiosk's idle screen (controller/ratings/public_info.py).
PUBLIC_INFO = """
CREATE TABLE public_info (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    updated REAL NOT NULL
)
"""

#: What the console and the reports read a year of: statistics by any grouping over a
#: period read this index alone (the rows carry the rating's JSON, many times larger),
#: and the newest cases of a status come without sorting them all.
READ_INDEXES = """
CREATE INDEX ratings_stats ON ratings (ts, misuse, officer, desk, local_day, local_hour, scale,
    level, satisfied, dissatisfied);
CREATE INDEX cases_status_created ON cases (status, created)
"""

#: Where a rating's officer, day and hour came from: the kiosk's clock (``device``), or,
#: when the kiosk's clock was not trusted, when the controller received it.
TIME_SOURCE = ("ALTER TABLE ratings ADD COLUMN time_source TEXT NOT NULL DEFAULT 'device'"
               " CHECK (time_source IN ('device', 'controller'))")
