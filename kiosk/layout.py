"""Where things are on each screen, as fractions of the window (top-left origin).

The Kivy view places widgets from these bands, so the kiosk scales from
800x480 to 1920x1080 in landscape or portrait; tests use the same numbers
to tap the real window.
"""

from __future__ import annotations

import math

# Idle screen bands (top, bottom) as fractions of the height.
HEADER = (0.0, 0.17)
INVITE = (0.17, 0.27)
FACES = (0.27, 0.80)
INFO = (0.80, 1.0)
LANGUAGE_BUTTON = (0.86, 1.0, 0.0, 0.17)  # left, right, top, bottom

# Follow-up screen.
WHY = (0.0, 0.18)
REASONS = (0.18, 0.80)
ACTIONS = (0.82, 1.0)

# Dossier screen.
DOSSIER_TITLE = (0.0, 0.12)
DOSSIER_FIELD = (0.12, 0.24)
KEYPAD = (0.26, 0.86)
KEYPAD_ROWS = (("1", "2", "3"), ("4", "5", "6"), ("7", "8", "9"), ("back", "0", "enter"))
DOSSIER_SKIP = (0.88, 1.0)


def face_center(level: int, count: int, portrait: bool = False) -> tuple[float, float]:
    """Centre of face ``level`` (1 = best: leftmost, or topmost on a portrait screen)."""
    if portrait:
        return 0.5, FACES[0] + (FACES[1] - FACES[0]) * (level - 0.5) / count
    return (level - 0.5) / count, (FACES[0] + FACES[1]) / 2


def reason_center(index: int, count: int) -> tuple[float, float]:
    """Centre of reason toggle ``index`` (0-based), laid out in two columns."""
    rows = math.ceil(count / 2)
    row, col = divmod(index, 2)
    top, bottom = REASONS
    return (col + 0.5) / 2, top + (bottom - top) * (row + 0.5) / rows


def skip_center() -> tuple[float, float]:
    return 0.25, (ACTIONS[0] + ACTIONS[1]) / 2


def send_center() -> tuple[float, float]:
    return 0.75, (ACTIONS[0] + ACTIONS[1]) / 2


def key_center(key: str) -> tuple[float, float]:
    """Centre of a keypad key (a digit, ``back`` or ``enter``)."""
    for r, row in enumerate(KEYPAD_ROWS):
        if key in row:
            top, bottom = KEYPAD
            return (row.index(key) + 0.5) / 3, top + (bottom - top) * (r + 0.5) / len(KEYPAD_ROWS)
    raise KeyError(key)


def dossier_skip_center() -> tuple[float, float]:
    return 0.5, (DOSSIER_SKIP[0] + DOSSIER_SKIP[1]) / 2
