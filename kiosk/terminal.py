"""The kiosk without its face: flow, misuse, office hours and recording, thread-safe.

Touch (Kivy's thread), buttons (gpiozero's thread), config and commands
(the node's threads) all come through here. A rating is handed to
``emit`` (the node's durable outbox, which returns once fsync'd) *before*
the screen changes, so no citizen is thanked for an answer that is not on
disk. If the disk cannot take it (full, failing), the rating is held in memory,
the screen says it could not be recorded and to tell the officer, and
:meth:`Terminal.tick` writes what is held as soon as the disk takes it again: the
app never dies on a tap.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk.flow import Answer, Outcome, RatingFlow, Screen
from kiosk.misuse import MisuseDetector
from kiosk.rating_event import detail_data, rating_data
from kiosk.settings import KioskSettings, Officer, parse_settings
from wire.messages import utc_now
from wire.rating import EVENT_RATING, EVENT_RATING_DETAIL

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], dict[str, Any]]
Listener = Callable[[], None]

#: Ratings held in memory while the disk refuses them (beyond, the oldest detail goes).
MAX_HELD = 2000
RETRY_S = 5.0


@dataclasses.dataclass
class Held:
    """An event the disk refused; a detail waits for its held rating's id."""

    type: str
    data: dict[str, Any]
    rating: Held | None = None
    event_id: str | None = None


class Terminal:
    """One kiosk's behaviour; views and buttons call it, it tells listeners to redraw."""

    def __init__(
        self, emit: Emit, device_id: str, settings: KioskSettings | None = None, *,
        clock_synced: Callable[[], bool] = lambda: True,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = utc_now,
    ):
        self._emit = emit
        self.device_id = device_id
        self.settings = settings or KioskSettings()
        self._base = self.settings
        self.clock_synced = clock_synced
        self._monotonic, self._wall = monotonic, wall
        self._lock = threading.RLock()
        self.flow = RatingFlow(self.settings)
        self.misuse = MisuseDetector(self.settings.misuse)
        self.language = self.settings.language
        self.listeners: list[Listener] = []
        self.feedback: list[Callable[[int], None]] = []  # LEDs, buzzer: called with the level
        self.on_open_change: list[Callable[[bool], None]] = []  # backlight
        self.is_open = True
        self.last_rating: dict[str, Any] | None = None
        self._officer_shown: Officer | None = None
        #: Events the disk refused, oldest first, and why (None: all written).
        self.held: list[Held] = []
        self.storage_error: str | None = None
        self._retry_at = 0.0

    # -- what the view and the buttons call ---------------------------------------------

    @property
    def screen(self) -> Screen:
        return self.flow.screen

    def press(self, level: int, source: str = "touch") -> dict[str, Any] | None:
        """Record a rating of ``level``; return the event, or None while closed."""
        with self._lock:
            now = self._monotonic()
            if self.flow.screen is Screen.CLOSED:
                log.info("%s press of level %s ignored: outside office hours", source, level)
                return None
            if not 1 <= level <= self.settings.scale:
                # e.g. the fifth button while the controller has set a 4-level scale
                log.warning("%s press of level %s ignored: the scale has %s levels", source,
                            level, self.settings.scale)
                return None
            misuse = self.misuse.check(now)
            outcome = self.flow.press(level, now)
            event = self._record(outcome, source=source, misuse=misuse)
            self._changed()
        for light in self.feedback:
            _safely(light, level)
        return event

    def toggle_reason(self, key: str) -> None:
        with self._lock:
            self.flow.toggle_reason(key, self._monotonic())
            self._changed()

    def reasons_done(self, *, skip: bool = False) -> None:
        with self._lock:
            self._record(self.flow.reasons_done(self._monotonic(), skip=skip))
            self._changed()

    def type_key(self, key: str) -> None:
        with self._lock:
            self._record(self.flow.type_key(key, self._monotonic()))
            self._changed()

    def toggle_language(self) -> None:
        with self._lock:
            self.language = "en" if self.language == "vi" else "vi"
            log.info("language: %s", self.language)
            self._changed()

    def tick(self) -> None:
        """Called a few times a second: office hours, timeouts, held ratings written."""
        with self._lock:
            now = self._monotonic()
            if self.held and now >= self._retry_at:
                self._write_held(now)
            is_open = self.settings.office_hours.is_open(self.local_now())
            changed = is_open != self.is_open
            if changed:
                self.is_open = is_open
                self._record(self.flow.set_open(is_open, now))
                log.info("office hours: %s", "open" if is_open else "closed")
            before = self.flow.screen
            self._record(self.flow.tick(now))
            if self.flow.screen is Screen.IDLE and before is not Screen.IDLE:
                self.language = self.settings.language  # the next citizen starts afresh
            officer = self.officer()
            shift_changed = officer != self._officer_shown
            self._officer_shown = officer
            if changed or shift_changed or self.flow.screen is not before:
                self._changed()
        if changed:
            for hook in self.on_open_change:
                _safely(hook, is_open)

    def configure(self, raw: dict[str, Any]) -> None:
        """Node config handler: apply the controller's desired config; raises to refuse it."""
        settings = parse_settings(raw, self._base)
        with self._lock:
            self.settings = settings
            self.flow.configure(settings)
            self.misuse.rules = settings.misuse
            if "language" in raw:
                self.language = settings.language
            self._changed()
        log.info("kiosk settings applied: scale %s, %s reasons", settings.scale,
                 len(settings.reasons))

    def redraw(self) -> None:
        """Something shown changed outside the flow (a photo arrived)."""
        self._changed()

    def local_now(self) -> dt.datetime:
        return self._wall().astimezone(self.settings.zone)

    def officer(self) -> Officer:
        return self.settings.officer_at(self._wall())

    # -- inside -------------------------------------------------------------------------

    def _record(self, outcome: Outcome, *, source: str = "touch",
                misuse: str | None = None) -> dict[str, Any] | None:
        detail = outcome.detail
        if detail is not None and (detail.rating_id or detail.held is not None):
            data = detail_data(detail, outcome.timed_out)
            if detail.rating_id:
                self._put(EVENT_RATING_DETAIL, data)
            else:  # its rating is held: the detail waits with it
                self._hold(Held(EVENT_RATING_DETAIL, data, rating=detail.held), "held")
        if outcome.rating is None:
            return None
        return self._record_rating(outcome.rating, source, misuse)

    def _put(self, type_: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Write an event durably; if the disk refuses it, hold it (None)."""
        if self.held:  # keep the order: nothing passes what waits
            self._hold(Held(type_, data), "earlier ratings are still held")
            return None
        try:
            return self._emit(type_, data)
        except (OSError, sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            log.error("cannot record %s now (%s): held in memory until the disk takes it",
                      type_, exc)
            self._hold(Held(type_, data), str(exc))
            return None

    def _hold(self, held: Held, why: str) -> None:
        if len(self.held) >= MAX_HELD:
            drop = next((h for h in self.held if h.type != EVENT_RATING), self.held[0])
            self.held.remove(drop)
            log.error("more than %s events held: %s dropped", MAX_HELD, drop.type)
        self.held.append(held)
        if self.storage_error is None:
            self.storage_error = why
            self._retry_at = self._monotonic() + RETRY_S
        return None

    def _write_held(self, now: float) -> None:
        while self.held:
            held = self.held[0]
            if held.rating is not None:
                held.data["rating_id"] = held.rating.event_id
            try:
                event = self._emit(held.type, held.data)
            except (OSError, sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
                self.storage_error = str(exc)
                self._retry_at = now + RETRY_S
                return
            held.event_id = event["id"]
            self.held.pop(0)
        log.warning("the disk takes events again: every held rating written")
        self.storage_error = None
        self._changed()

    def _record_rating(self, answer: Answer, source: str,
                       misuse: str | None) -> dict[str, Any] | None:
        now = self._wall()
        data = rating_data(
            answer, self.settings, kiosk=self.device_id, officer=self.settings.officer_at(now),
            when=now, clock_synced=self.clock_synced(), misuse=misuse, source=source,
            follow_up=self.flow.screen in (Screen.FOLLOW_UP, Screen.DOSSIER),
            language=self.language)
        event = self._put(EVENT_RATING, data)
        if event is None:
            answer.held = self.held[-1]
            log.warning("rating (level %s/%s) held in memory: %s", answer.level,
                        answer.scale, self.storage_error)
            return None
        answer.rating_id = event["id"]
        self.last_rating = event
        log.info("rating %s (level %s/%s, %s%s) recorded", event["id"], answer.level,
                 answer.scale, source, f", flagged {misuse}" if misuse else "")
        return event

    def _changed(self) -> None:
        for listener in self.listeners:
            _safely(listener)


def _safely(fn: Callable[..., Any], *args: Any) -> None:
    """Feedback and redraws must never lose a rating: log their failures and go on."""
    try:
        fn(*args)
    except Exception:
        log.exception("kiosk hook %r failed", fn)
