"""Where things are on each screen, as fractions of the window (top-left origin).

The Kivy view places widgets from these bands, so the kiosk scales from
800x480 to 1920x1080 in landscape or portrait; tests use the same numbers
to tap the real window.
"""

from __future__ import annotations

import math

# Idle screen bands (top, bottom) as fractions of the height.
HEADER = (0.0, 0.18)
INVITE = (0.18, 0.27)
FACES = (0.27, 0.80)
INFO = (0.80, 1.0)
#: The hotline's part of the information band (left, when set): landscape, portrait.
HOTLINE_RIGHT = (0.30, 0.42)
LANGUAGE_BUTTON = (0.86, 1.0, 0.0, 0.18)  # left, right, top, bottom

# Follow-up screen.
WHY = (0.0, 0.18)
REASONS = (0.18, 0.80)
ACTIONS = (0.82, 1.0)

# Dossier screen: four rows of keys, each at least 15 mm high; "skip" on the last.
DOSSIER_TITLE = (0.0, 0.09)
DOSSIER_FIELD = (0.09, 0.19)
KEYPAD = (0.19, 1.0)
KEYPAD_ROWS = (("1", "2", "3"), ("4", "5", "6"), ("7", "8", "9"),
               ("skip", "back", "0", "enter"))
GAP = 0.005

#: The official 7" touchscreen's active area, for checking touch targets (>= 15 mm).
SCREEN_MM = (154.2, 85.9)


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
    """The follow-up screen's "skip" button."""
    return 0.25, (ACTIONS[0] + ACTIONS[1]) / 2


def send_center() -> tuple[float, float]:
    """The follow-up screen's "send" button."""
    return 0.75, (ACTIONS[0] + ACTIONS[1]) / 2


def key_rect(key: str) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) of a keypad key: a digit, ``back``, ``enter`` or ``skip``."""
    top, bottom = KEYPAD
    height = (bottom - top) / len(KEYPAD_ROWS)
    for r, row in enumerate(KEYPAD_ROWS):
        if key in row:
            c, width = row.index(key), 1 / len(row)
            return (c * width + GAP, (c + 1) * width - GAP,
                    top + r * height + GAP, top + (r + 1) * height - GAP)
    raise KeyError(key)


def key_center(key: str) -> tuple[float, float]:
    """Centre of a keypad key."""
    left, right, top, bottom = key_rect(key)
    return (left + right) / 2, (top + bottom) / 2
