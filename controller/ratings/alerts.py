"""Alerts: a desk getting many negative answers in a short time, or a kiosk rated
faster than any desk serves citizens.

``negative``: HappyOrNot's rule of thumb, the default here: at least 50 %
dissatisfied answers within 15 minutes, with at least 4 answers. Leaders can
change the rule; it is kept in the database.

``pace``: more than :data:`PACE_MAX` ratings from one kiosk within an hour
(one every 30 s, sustained; a one-stop desk serves a citizen in minutes) is
ballot stuffing, paced to pass the kiosk's own rapid-tap check: one tap every
12 s for an hour. Those ratings, and the kiosk's next ones while the pace
lasts, are flagged as misuse: they stay listed (``include_misuse``) but
count in no statistic and open no case.

The pace is counted in memory (each kiosk's last hour, at most 121 times) and
the database asked only past that, so ordinary ratings cost nothing more; after
a restart the count starts again from empty.

Both are checked after each rating inside its transaction; an alert is
stored, shown by the API and published (not retained) on ``tt/v1/alerts``
once committed. A desk alerts at most once per window and kind.

Other domains raise alerts of their own kinds through :meth:`Alerts.raise_alert`
(the desk cameras: ``camera_key``, ``footage_chain``), with a ``detail`` that
says what happened; they are stored, listed and published the same way.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlite_utils

from controller.db.writer import Writer
from controller.errors import InvalidRequest, _t
from wire.messages import format_ts, parse_ts, utc_now

log = logging.getLogger(__name__)

Publish = Callable[[dict[str, Any]], None]
#: The longest alert window: a day. (Regression: a window of 1e11 s made every
#: dissatisfied rating fail to store, its window start before year 1.)
MAX_WINDOW_S = 86400.0
#: Ratings one kiosk may file within :data:`PACE_WINDOW_S` before they are flagged.
PACE_MAX = 120
PACE_WINDOW_S = 3600.0


@dataclasses.dataclass(frozen=True)
class AlertRules:
    window_s: float = 900.0
    min_answers: int = 4
    negative_share: float = 0.5


class Alerts:
    """The rating hook that raises alerts, and their publication after commit."""

    def __init__(self, writer: Writer, publish: Publish):
        self.writer = writer
        self._publish = publish
        self._pending: list[int] = []  # ids of alerts stored in this batch; writer thread only
        #: Kiosk -> its recent rating times (Unix s); writer thread only, bounded per kiosk.
        self._recent: dict[str, collections.deque[float]] = {}
        # Read before the writer thread starts; leaders' changes persist across restarts.
        row = writer.db.execute(
            "SELECT window_s, min_answers, negative_share FROM alert_rules").fetchone()
        self.rules = AlertRules(*row) if row else AlertRules()
        writer.batch_hooks.append(self._flush)

    def set_rules(self, rules: AlertRules) -> None:
        self.writer.call(lambda db: db.execute(
            "INSERT OR REPLACE INTO alert_rules (id, window_s, min_answers, negative_share)"
            " VALUES (1, ?, ?, ?)", (rules.window_s, rules.min_answers, rules.negative_share)))
        self.rules = rules

    def check_pace(self, db: sqlite_utils.Database, rating: dict[str, Any]) -> None:
        """Rating hook, before the others: flag a kiosk's ratings as misuse, and alert
        once an hour, while it files more than :data:`PACE_MAX` an hour."""
        device, end = rating["device"], rating["ts"]
        # In memory first (the writer thread only): the last hour's rating times of each
        # kiosk, at most PACE_MAX + 1 of them; the database is asked only past that.
        moment = parse_ts(end)
        recent = self._recent.setdefault(device, collections.deque())
        recent.append(moment.timestamp())
        while recent and recent[0] <= recent[-1] - PACE_WINDOW_S:
            recent.popleft()
        while len(recent) > PACE_MAX + 1:
            recent.popleft()
        if len(recent) <= PACE_MAX:
            return
        start = format_ts(moment - dt.timedelta(seconds=PACE_WINDOW_S))
        (count,) = db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM ratings WHERE device = ? AND ts > ?"
            " AND ts <= ? LIMIT ?)", (device, start, end, PACE_MAX + 1)).fetchone()
        if count <= PACE_MAX:
            return
        db.execute("UPDATE ratings SET misuse = 1 WHERE device = ? AND ts > ? AND ts <= ?"
                   " AND misuse = 0", (device, start, end))
        rating["misuse"] = True
        desk = rating["desk"] or device
        if db.execute("SELECT 1 FROM alerts WHERE desk = ? AND kind = 'pace' AND ts > ?",
                      (desk, start)).fetchone():
            return
        (count,) = db.execute("SELECT count(*) FROM ratings WHERE device = ? AND ts > ?"
                              " AND ts <= ?", (device, start, end)).fetchone()
        cursor = db.execute(
            "INSERT INTO alerts (desk, ts, window_start, answers, negative, created, kind)"
            " VALUES (?, ?, ?, ?, 0, ?, 'pace')", (desk, end, start, count, time.time()))
        self._pending.append(int(cursor.lastrowid or 0))

    def check(self, db: sqlite_utils.Database, rating: dict[str, Any]) -> None:
        """Rating hook: raise an alert for the rating's desk if the rule is met."""
        desk = rating["desk"] or rating["device"]
        if rating["misuse"] or not rating["dissatisfied"]:
            return
        end = parse_ts(rating["ts"])
        start = format_ts(end - dt.timedelta(seconds=self.rules.window_s))
        answers, negative = db.execute(
            "SELECT count(*), coalesce(sum(dissatisfied), 0) FROM ratings WHERE"
            " coalesce(desk, device) = ? AND misuse = 0 AND ts > ? AND ts <= ?",
            (desk, start, rating["ts"])).fetchone()
        if answers < self.rules.min_answers or negative / answers < self.rules.negative_share:
            return
        if db.execute("SELECT 1 FROM alerts WHERE desk = ? AND kind = 'negative' AND ts > ?",
                      (desk, start)).fetchone():
            return  # already alerted for this window
        cursor = db.execute(
            "INSERT INTO alerts (desk, ts, window_start, answers, negative, created)"
            " VALUES (?, ?, ?, ?, ?, ?)", (desk, rating["ts"], start, answers, negative,
                                           time.time()))
        self._pending.append(int(cursor.lastrowid or 0))

    def raise_alert(self, db: sqlite_utils.Database, kind: str, desk: str,
                    detail: str) -> None:
        """Store an alert another domain raises (a camera's new key, a broken footage
        chain) inside the caller's transaction; published once committed. ``desk`` is
        the desk, or the device when it is at none; ``detail`` says what happened."""
        if kind not in KINDS:
            raise ValueError(f"alert kind {kind!r}: expected one of {KINDS}")
        now = format_ts(utc_now())
        cursor = db.execute(
            "INSERT INTO alerts (desk, ts, window_start, answers, negative, created, kind,"
            " detail) VALUES (?, ?, ?, 0, 0, ?, ?, ?)", (desk, now, now, time.time(), kind,
                                                         detail[:500]))
        self._pending.append(int(cursor.lastrowid or 0))

    def _flush(self, committed: bool) -> None:
        """Publish the alerts of a committed batch: as stored, each once (a batch part
        undone and stored again, see controller.ingest, noted some twice or not at all)."""
        pending, self._pending = self._pending, []
        ids = list(dict.fromkeys(pending)) if committed else []
        rows = self.writer.db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id IN ({', '.join('?' * len(ids))})"
            " ORDER BY id", ids).fetchall() if ids else []
        for alert in (dict(zip(_ALERT_FIELDS, row, strict=True)) for row in rows):
            if alert["detail"]:
                log.warning("alert (%s): %s: %s", alert["kind"], alert["desk"],
                            alert["detail"])
            else:
                log.warning("alert (%s): desk %s had %s negative of %s answers since %s",
                            alert["kind"], alert["desk"], alert["negative"],
                            alert["answers"], alert["window_start"])
            try:
                self._publish(alert)
            except Exception:
                log.exception("publishing alert %s failed", alert["id"])


_ALERT_FIELDS = ("id", "kind", "desk", "ts", "window_start", "answers", "negative", "detail")
_ALERT_COLUMNS = ", ".join(_ALERT_FIELDS)


def list_alerts(db: sqlite_utils.Database, since: str | None = None,
                desk: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE 1"
    params: list[Any] = []
    if since:
        sql, params = sql + " AND ts >= ?", [*params, since]
    if desk:
        sql, params = sql + " AND desk = ?", [*params, desk]
    rows = db.execute(sql + " ORDER BY ts DESC", params).fetchall()
    return [dict(zip(_ALERT_FIELDS, r, strict=True)) for r in rows]


#: The ``type`` an alert is published with, by kind.
PAYLOAD_TYPES = {"negative": "negative_ratings", "pace": "rating_pace",
                 "camera_key": "camera_key", "footage_chain": "footage_chain"}
#: Every kind: ``camera_key`` (a camera reported a signing key other than the pinned
#: one) and ``footage_chain`` (chain heads missing or rewritten) come from
#: controller.cameras.
KINDS = tuple(PAYLOAD_TYPES)


def alert_payload(alert: dict[str, Any]) -> bytes:
    return json.dumps({"v": 1, "type": PAYLOAD_TYPES[alert["kind"]], **alert},
                      ensure_ascii=False).encode()


def parse_rules(body: dict[str, Any], current: AlertRules) -> AlertRules:
    try:
        rules = AlertRules(
            window_s=float(body.get("window_s", current.window_s)),
            min_answers=int(body.get("min_answers", current.min_answers)),
            negative_share=float(body.get("negative_share", current.negative_share)))
    except (TypeError, ValueError):
        raise InvalidRequest(_t("alert rules {rules!r}: expected numbers"), rules=body) from None
    if not (0 < rules.window_s <= MAX_WINDOW_S and 1 <= rules.min_answers <= 10_000
            and 0 < rules.negative_share <= 1):
        raise InvalidRequest(_t("alert rules {rules!r}: expected 0 < window_s <= {window:g} (a "
                                "day), 1 <= min_answers <= 10000, 0 < negative_share <= 1"),
                             rules=body, window=MAX_WINDOW_S)
    return rules
