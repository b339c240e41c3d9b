"""The chain heads cameras report after each segment (``footage_head``), kept so a clip's
manifest can be checked against what the camera said at the time it recorded.

A head carries the segment's seq, chain hash and sha256, not the whole manifest
entry, so the controller cannot recompute a link; it checks what it can: a seq
reported again with another chain (footage or manifest rewritten, or the store
rebuilt) at once, and seqs missing between two it has (heads deleted on the
camera before they were sent) once the late ones have had time to arrive
(events may arrive out of order after an outage). Rows are pruned
:data:`KEEP_DAYS` after the segment ended, unless a hold still covers them.
"""

from __future__ import annotations

import re
import time
from typing import Any

import sqlite_utils

from wire.camera import HOLD_DAYS

KEEP_DAYS = HOLD_DAYS + 30
#: A missing seq is a gap once the seq after it arrived this long ago.
GAP_GRACE_S = 600.0
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: What an alert of a rewritten chain says (and how the next one finds it).
REWRITTEN = "reported again with another chain"
#: Gaps named in one alert.
_GAPS_NAMED = 10


def parse_head(data: dict[str, Any]) -> tuple[int, str, str, float, float]:
    """(seq, chain, sha256, start, end) of a ``footage_head`` event; ValueError if malformed."""
    seq, chain, digest = data.get("seq"), data.get("chain"), data.get("sha256")
    start, end = data.get("start"), data.get("end")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**53:
        raise ValueError(f"footage_head seq {seq!r}: expected a whole number")
    for name, value in (("chain", chain), ("sha256", digest)):
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise ValueError(f"footage_head {name} {str(value)[:80]!r}: expected 64 hex digits")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 < value < 2**33):
            raise ValueError(f"footage_head {name} {value!r}: expected Unix seconds")
    assert isinstance(chain, str) and isinstance(digest, str)
    return seq, chain, digest, float(start), float(end)  # type: ignore[arg-type]


def record_head(db: sqlite_utils.Database, camera: str, data: dict[str, Any]) -> str | None:
    """Store a head; return what is wrong when the seq was reported before with another
    chain (the first one is kept: it is what the camera said when it recorded)."""
    seq, chain, digest, start, end = parse_head(data)
    before = db.execute("SELECT chain FROM footage_heads WHERE camera = ? AND seq = ?",
                        (camera, seq)).fetchone()
    if before is None:
        db.execute("INSERT INTO footage_heads (camera, seq, chain, sha256, start, \"end\","
                   " received) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (camera, seq, chain, digest, start, end, time.time()))
        return None
    if before[0] == chain:
        return None
    return (f"camera {camera}: segment seq {seq} {REWRITTEN} ({chain[:16]}…, first "
            f"{before[0][:16]}…): its footage or manifest was rewritten, or its store rebuilt")


def expected_heads(db: sqlite_utils.Database, camera: str, first: int,
                   last: int) -> dict[int, str]:
    """seq -> chain, as recorded, for ``camera``'s seqs first..last."""
    return dict(db.execute("SELECT seq, chain FROM footage_heads WHERE camera = ?"
                           " AND seq BETWEEN ? AND ?", (camera, first, last)).fetchall())


def find_gaps(db: sqlite_utils.Database, now: float | None = None,
              grace_s: float = GAP_GRACE_S) -> dict[str, str]:
    """Writer task: look at the heads that arrived more than ``grace_s`` ago and were not
    looked at yet; camera -> what is missing, for each camera with seqs missing before
    them. Each head is looked at once."""
    now = time.time() if now is None else now
    rows = db.execute(
        "SELECT h.camera, h.seq, (SELECT max(p.seq) FROM footage_heads p"
        "  WHERE p.camera = h.camera AND p.seq < h.seq) FROM footage_heads h"
        " WHERE h.checked = 0 AND h.received <= ? ORDER BY h.camera, h.seq",
        (now - grace_s,)).fetchall()
    gaps: dict[str, list[str]] = {}
    for camera, seq, before in rows:
        if before is not None and before < seq - 1:
            missing = f"{before + 1}" if before + 2 == seq else f"{before + 1}-{seq - 1}"
            gaps.setdefault(camera, []).append(missing)
    db.execute("UPDATE footage_heads SET checked = 1 WHERE checked = 0 AND received <= ?",
               (now - grace_s,))
    return {camera: (f"camera {camera}: no chain head for seqs "
                     f"{', '.join(found[:_GAPS_NAMED])}"
                     f"{' …' if len(found) > _GAPS_NAMED else ''}: those segments' records "
                     "were removed on the camera before they reached the controller")
            for camera, found in gaps.items()}


def prune(db: sqlite_utils.Database, now: float | None = None) -> int:
    """Writer task: forget heads of segments that ended :data:`KEEP_DAYS` ago, unless an
    active hold covers them; how many."""
    now = time.time() if now is None else now
    return int(db.execute(
        "DELETE FROM footage_heads WHERE \"end\" < ? AND NOT EXISTS (SELECT 1 FROM"
        " camera_holds h WHERE h.camera = footage_heads.camera AND h.state IN"
        " ('requested', 'waiting', 'held') AND footage_heads.start < h.\"end\""
        " AND footage_heads.\"end\" > h.start)", (now - KEEP_DAYS * 86400,)).rowcount)
