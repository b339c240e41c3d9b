"""The rating flow as a state machine: which screen shows, and what the citizen said.

Pure: no clock, no I/O. Every method takes ``now`` (monotonic seconds) and
returns an :class:`Outcome` naming what must be recorded: a new rating
(recorded before its thank-you or follow-up screen shows) and/or the detail
of the previous one (reasons, dossier code), which is kept even when the
citizen walks away and the flow times out.

The idle screen carries the faces, so rating takes one tap.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from kiosk.settings import KioskSettings
from wire.rating import MAX_DOSSIER_LENGTH, level_of


class Screen(enum.Enum):
    IDLE = "idle"  # who serves, the faces, the information panel
    FOLLOW_UP = "follow_up"  # "why?" after a dissatisfied answer
    DOSSIER = "dossier"  # optional dossier or ticket code
    THANKS = "thanks"
    CLOSED = "closed"  # outside office hours




@dataclasses.dataclass
class Answer:
    """One citizen's answer, growing as they go through the flow."""

    level: int
    scale: int
    reasons: list[str] = dataclasses.field(default_factory=list)
    dossier: str = ""
    rating_id: str | None = None  # the event id, once recorded
    held: Any = None  # the rating held in memory while the disk refused it (terminal.Held)

    @property
    def has_detail(self) -> bool:
        return bool(self.reasons or self.dossier)


@dataclasses.dataclass
class Outcome:
    """What a step asks to record: ``rating`` (new) and ``detail`` (of an earlier answer)."""

    rating: Answer | None = None
    detail: Answer | None = None
    timed_out: bool = False


class RatingFlow:
    """Screens and answers; driven by presses, taps, keys and :meth:`tick`."""

    def __init__(self, settings: KioskSettings):
        self.settings = settings
        self.screen = Screen.IDLE
        self.answer: Answer | None = None
        self._deadline: float | None = None

    def press(self, level: int, now: float) -> Outcome:
        """A face tapped or a button pressed; ignored while closed."""
        if self.screen is Screen.CLOSED:
            return Outcome()
        level_of(self.settings.scale, level)  # raises on an impossible level
        previous = self._finish()
        self.answer = Answer(level, self.settings.scale)
        if self.settings.asks_why(level) and self.settings.reasons:
            self._show(Screen.FOLLOW_UP, now)
        elif self.settings.ask_dossier:
            self._show(Screen.DOSSIER, now)
        else:
            self._thank(now)
        return Outcome(rating=self.answer, detail=previous)

    def toggle_reason(self, key: str, now: float) -> None:
        if self.screen is not Screen.FOLLOW_UP or self.answer is None:
            return
        keys = [r["key"] for r in self.settings.reasons]
        if key not in keys:
            raise ValueError(f"reason {key!r}: expected one of {keys}")
        if key in self.answer.reasons:
            self.answer.reasons.remove(key)
        else:
            self.answer.reasons.append(key)
        self._deadline = now + self.settings.idle_timeout_s

    def reasons_done(self, now: float, *, skip: bool = False) -> Outcome:
        """Send (or skip) the reasons; on to the dossier code or the thank-you."""
        if self.screen is not Screen.FOLLOW_UP or self.answer is None:
            return Outcome()
        if skip:
            self.answer.reasons.clear()
        if self.settings.ask_dossier:
            self._show(Screen.DOSSIER, now)
            return Outcome()
        return self._complete(now)

    def type_key(self, key: str, now: float) -> Outcome:
        """A keypad key or a scanner's keystroke: a character, ``back``, ``enter`` or ``skip``."""
        if self.screen is not Screen.DOSSIER or self.answer is None:
            return Outcome()
        self._deadline = now + self.settings.idle_timeout_s
        if key == "back":
            self.answer.dossier = self.answer.dossier[:-1]
        elif key == "skip":
            self.answer.dossier = ""
            return self._complete(now)
        elif key == "enter":
            return self._complete(now)
        elif len(key) == 1 and key.isprintable() and len(self.answer.dossier) < MAX_DOSSIER_LENGTH:
            self.answer.dossier += key.upper()
        return Outcome()

    def tick(self, now: float) -> Outcome:
        """Time passes: the thank-you ends, an unfinished flow returns to idle."""
        if self._deadline is None or now < self._deadline:
            return Outcome()
        self._deadline = None
        if self.screen is Screen.THANKS:
            self.screen = Screen.IDLE
            return Outcome()
        detail = self._finish()
        self.screen = Screen.IDLE
        return Outcome(detail=detail, timed_out=True)

    def set_open(self, is_open: bool, now: float) -> Outcome:
        """Office hours began or ended; closing keeps what an unfinished answer had."""
        if not is_open and self.screen is not Screen.CLOSED:
            detail = self._finish()
            self.screen, self._deadline = Screen.CLOSED, None
            return Outcome(detail=detail)
        if is_open and self.screen is Screen.CLOSED:
            self.screen = Screen.IDLE
        return Outcome()

    def configure(self, settings: KioskSettings) -> None:
        """New settings take effect from the next answer on."""
        self.settings = settings

    # -- inside ------------------------------------------------------------------------

    def _show(self, screen: Screen, now: float) -> None:
        self.screen = screen
        self._deadline = now + self.settings.idle_timeout_s

    def _thank(self, now: float) -> None:
        self.screen = Screen.THANKS
        self._deadline = now + self.settings.thank_you_s

    def _complete(self, now: float) -> Outcome:
        detail = self._finish()
        self._thank(now)
        return Outcome(detail=detail)

    def _finish(self) -> Answer | None:
        """Close the answer in progress; return it if it has detail to record."""
        answer, self.answer = self.answer, None
        if answer is not None and self.screen in (Screen.FOLLOW_UP, Screen.DOSSIER) and (
                answer.has_detail):
            return answer
        return None
