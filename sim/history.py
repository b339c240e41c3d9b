"""Months of made-up rating history for the demo, so the console's charts, cases and
reports have something to show on first start.

Officers (with a small photo each), a desk per kiosk, a duty roster and the
commune's public phone numbers are written as a leader would; ratings are
stored through the controller's own rating store (``store_rating``), so desk
and officer come from the roster and every dissatisfied one opens a follow-up
case, exactly as live ones do.
Working days only (Monday to Friday, 7:00 to 17:00 local time; today all
day, for the simulated citizens), about 15 citizens per desk a day, most of
them satisfied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import struct
import time
import uuid
import zlib
from zoneinfo import ZoneInfo

import sqlite_utils

from controller.broadcasts.schedule import TIMEZONE
from controller.ratings import cases, public_info
from controller.ratings.store import store_rating
from wire.messages import format_ts

#: (id, name, title, phone, colour of the photo)
OFFICERS = (
    ("demo-lan", "Nguyễn Thị Lan", "Công chức Tư pháp – Hộ tịch", "0909 123 401", (163, 22, 26)),
    ("demo-hung", "Trần Văn Hùng", "Công chức Địa chính – Xây dựng", "0909 123 402",
     (11, 79, 138)),
    ("demo-mai", "Lê Thị Mai", "Công chức Văn hóa – Xã hội", "0909 123 403", (29, 107, 47)),
    ("demo-tuan", "Phạm Minh Tuấn", "Công chức Văn phòng – Thống kê", "0909 123 404",
     (120, 80, 20)),
)
REASONS = ("waited", "attitude", "guidance", "papers")
#: The commune's public phone numbers ("công khai số điện thoại"), shown on every kiosk;
#: made-up numbers.
PUBLIC_INFO = {
    "contacts": [
        {"name": "Võ Văn Bình", "title": "Chủ tịch UBND xã", "phone": "0909 000 111"},
        {"name": "Đặng Thị Hoa", "title": "Phó Chủ tịch UBND xã", "phone": "0909 000 222"},
        {"name": "Nguyễn Thị Lan", "title": "Công chức Tư pháp – Hộ tịch",
         "phone": "0909 123 401"},
    ],
    "hotline": "0251 3 800 800",
    "notices": ["Bộ phận một cửa làm việc từ 7 giờ đến 17 giờ, thứ Hai đến thứ Sáu."],
}
#: Levels 1 (very satisfied) to 4 (not satisfied), weighted as real desks answer.
WEIGHTS = (48, 34, 11, 7)


def seed(db: sqlite_utils.Database, kiosks: list[str], *, days: int = 270,
         per_day: int = 15, seed: int = 7, today: dt.date | None = None) -> int:
    """Write officers, desks, a roster and ``days`` of ratings for ``kiosks`` (which must
    be registered); returns how many ratings. Runs once: a database that has ratings
    is left as it is."""
    if db.execute("SELECT count(*) FROM ratings").fetchone()[0]:
        return 0
    rng = random.Random(seed)
    zone = ZoneInfo(TIMEZONE)
    today = today or dt.datetime.now(zone).date()
    now = time.time()
    for officer_id, name, title, phone, colour in OFFICERS:
        db.execute("INSERT OR IGNORE INTO officers (id, name, title, phone, created)"
                   " VALUES (?, ?, ?, ?, ?)", (officer_id, name, title, phone, now))
        png = _square_png(colour)
        db.execute("INSERT OR REPLACE INTO officer_photos (officer, sha256, type, data)"
                   " VALUES (?, ?, 'image/png', ?)",
                   (officer_id, hashlib.sha256(png).hexdigest(), png))
    if db.execute("SELECT 1 FROM public_info").fetchone() is None:
        info = public_info.validate(PUBLIC_INFO)
        db.execute("INSERT INTO public_info (id, body, updated) VALUES (1, ?, ?)",
                   (json.dumps(info, ensure_ascii=False), now))
    desks = []
    for n, kiosk in enumerate(kiosks, 1):
        desk = f"mot-cua-{n}"
        db.execute("INSERT OR IGNORE INTO desks (id, name, kiosk, created) VALUES (?, ?, ?, ?)",
                   (desk, f"Bộ phận một cửa — Quầy {n}", kiosk, now))
        desks.append((desk, kiosk))
    count = 0
    for back in range(days, -1, -1):
        day = today - dt.timedelta(days=back)
        if day.weekday() >= 5:
            continue
        opens = dt.datetime.combine(day, dt.time(7, 0), zone)
        closes = dt.datetime.combine(day, dt.time(17, 0), zone)
        if back == 0:  # today the simulated citizens rate around the clock
            opens, closes = opens.replace(hour=0), opens.replace(hour=0) + dt.timedelta(days=1)
        for n, (desk, kiosk) in enumerate(desks):
            officer = OFFICERS[(n + back // 7) % len(OFFICERS)][0]  # weekly rotation
            db.execute("INSERT INTO roster (desk, officer, start, end) VALUES (?, ?, ?, ?)",
                       (desk, officer, format_ts(opens), format_ts(closes)))
            if back == 0:
                continue  # today's ratings are the simulated citizens' own
            for _ in range(max(1, int(rng.gauss(per_day, per_day / 4)))):
                count += _rate(db, rng, kiosk, day, zone)
    start = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(0, 0), zone)
    _presence(db, rng, start.timestamp(), now)
    return count


def _presence(db: sqlite_utils.Database, rng: random.Random, start: float, now: float) -> None:
    """Online history since ``start`` for every approved device: up most of the time,
    with an outage of 1 to 12 hours every two weeks or so (a power cut, a broken link).
    The history ends a moment ago; each device's own birth continues it."""
    db.execute("UPDATE presence_tracking SET started = ?", (start,))
    devices = [row[0] for row in db.execute(
        "SELECT id FROM devices WHERE status = 'approved'").fetchall()]
    for device_id in devices:
        db.execute("UPDATE devices SET created = min(created, ?) WHERE id = ?",
                   (start, device_id))
        db.execute("DELETE FROM device_presence WHERE device = ?", (device_id,))
        since = start
        while since < now - 120:
            down = min(since + rng.expovariate(1 / (14 * 86400)), now - 120)
            db.execute("INSERT INTO device_presence (device, since, until) VALUES (?, ?, ?)",
                       (device_id, since, down))
            since = down + rng.uniform(3600, 12 * 3600)


def _rate(db: sqlite_utils.Database, rng: random.Random, kiosk: str, day: dt.date,
          zone: ZoneInfo) -> int:
    hour = rng.choice((7, 8, 8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 15, 16))
    when = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)), zone)
    level = rng.choices((1, 2, 3, 4), weights=WEIGHTS)[0]
    reasons = rng.sample(REASONS, rng.choice((1, 1, 2))) if level >= 3 else []
    data = {"level": level, "scale": 4, "reasons": reasons, "misuse": False,
            "ts_local": when.isoformat(timespec="milliseconds")}
    if reasons and rng.random() < 0.4:
        data["dossier_code"] = f"H{day:%y%m%d}-{rng.randrange(1000, 9999)}"
    event = {"id": str(uuid.uuid4()), "device": kiosk, "seq": 0, "type": "rating",
             "ts": format_ts(when), "clock_synced": True, "data": data}
    db.execute("INSERT INTO events (id, device, seq, type, ts, clock_synced, received, data)"
               " VALUES (?, ?, 0, 'rating', ?, 1, ?, ?)",
               (event["id"], kiosk, event["ts"], when.timestamp(),
                json.dumps(data, ensure_ascii=False)))
    cases.open_case(db, store_rating(db, event))
    return 1


def _square_png(colour: tuple[int, int, int], size: int = 96) -> bytes:
    """A plain square PNG of ``colour``: a stand-in for an officer's photo."""
    row = b"\x00" + bytes(colour) * size
    raw = zlib.compress(row * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(
        b"IEND", b"")
