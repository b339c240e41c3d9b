"""The rating vocabulary both sides share: event types, scales and their meaning.

Level 1 is always the best answer. Which levels count as satisfied and as
dissatisfied is fixed per scale here, so the kiosk (which asks "why?" after
a dissatisfied answer) and the controller (satisfaction index, alerts,
follow-up cases) cannot disagree.
"""

from __future__ import annotations

import dataclasses

from wire.errors import MessageError

#: A citizen's answer, emitted the moment the face or button is pressed.
EVENT_RATING = "rating"
#: What the citizen added afterwards (reasons, dossier code) to that answer.
EVENT_RATING_DETAIL = "rating_detail"

#: The longest dossier (or ticket) code a citizen can give, on the kiosk and at the controller.
MAX_DOSSIER_LENGTH = 32

#: Commands a kiosk answers: restart the app (systemd starts it again), and take a
#: screenshot and PUT it to the one-time URL in ``args["url"]``.
CMD_RESTART = "restart"
CMD_SCREENSHOT = "screenshot"

SCALES = (3, 4, 5)
DEFAULT_SCALE = 4


@dataclasses.dataclass(frozen=True)
class Level:
    """One answer of a scale: its number, words in each language, colour and face."""

    number: int
    vi: str
    en: str
    colour: str  # hex RGB
    face: str  # "very_happy", "happy", "neutral", "sad", "very_sad"
    satisfied: bool
    dissatisfied: bool


_VS = ("Rất hài lòng", "Very satisfied", "1a9850", "very_happy", True, False)
_S = ("Hài lòng", "Satisfied", "91cf60", "happy", True, False)
_N = ("Bình thường", "Neutral", "fdae61", "neutral", False, False)
_D = ("Không hài lòng", "Dissatisfied", "d73027", "sad", False, True)
_VD = ("Rất không hài lòng", "Very dissatisfied", "a50026", "very_sad", False, True)

_SCALE_LEVELS = {3: (_VS, _S, _D), 4: (_VS, _S, _N, _D), 5: (_VS, _S, _N, _D, _VD)}
_LEVELS = {scale: tuple(Level(i, *spec) for i, spec in enumerate(specs, start=1))
           for scale, specs in _SCALE_LEVELS.items()}


def levels(scale: int) -> tuple[Level, ...]:
    """The levels of a 3-, 4- or 5-level scale, best first."""
    return _LEVELS[check_scale(scale)]


def check_scale(scale: object) -> int:
    """Return ``scale`` if it is a supported scale, else raise :class:`MessageError`."""
    if isinstance(scale, bool) or scale not in SCALES:
        raise MessageError(f"rating scale {scale!r}: expected one of {SCALES}", "field")
    return int(scale)  # type: ignore[call-overload]


def level_of(scale: int, number: int) -> Level:
    """The level ``number`` (1 = best) of ``scale``; raise :class:`MessageError` if out of range."""
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= scale:
        raise MessageError(f"rating level {number!r}: expected 1..{scale}", "field")
    return levels(scale)[number - 1]


def is_dissatisfied(scale: int, number: int) -> bool:
    return level_of(scale, number).dissatisfied


def is_satisfied(scale: int, number: int) -> bool:
    return level_of(scale, number).satisfied
