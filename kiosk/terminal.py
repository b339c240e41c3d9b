"""The kiosk without its face: flow, misuse, office hours and recording, thread-safe.

Touch (Kivy's thread), buttons (gpiozero's thread), config and commands
(the node's threads) all come through here. A rating is handed to
``emit`` (the node's durable outbox, which returns once fsync'd) *before*
the screen changes, so no citizen is thanked for an answer that is not on
disk.
"""

from __future__ import annotations

import datetime as dt
import logging
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
        """Called a few times a second: office hours, timeouts."""
        with self._lock:
            now = self._monotonic()
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
        if outcome.detail is not None and outcome.detail.rating_id:
            self._emit(EVENT_RATING_DETAIL, detail_data(outcome.detail, outcome.timed_out))
        if outcome.rating is None:
            return None
        return self._record_rating(outcome.rating, source, misuse)

    def _record_rating(self, answer: Answer, source: str,
                       misuse: str | None) -> dict[str, Any]:
        now = self._wall()
        data = rating_data(
            answer, self.settings, kiosk=self.device_id, officer=self.settings.officer_at(now),
            when=now, clock_synced=self.clock_synced(), misuse=misuse, source=source,
            follow_up=self.flow.screen in (Screen.FOLLOW_UP, Screen.DOSSIER),
            language=self.language)
        event = self._emit(EVENT_RATING, data)
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
