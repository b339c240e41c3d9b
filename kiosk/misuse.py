"""Misuse detection: repeated or bursting presses are flagged, never dropped.

HappyOrNot's terminals flag a press within 5 s of the previous one; a burst
(many presses in a longer window) is flagged as well. The thresholds come
from the controller's config.
"""

from __future__ import annotations

import collections
import dataclasses


@dataclasses.dataclass(frozen=True)
class MisuseRules:
    """A press within ``window_s`` of the last, or the ``burst_count``-th in ``burst_window_s``."""

    window_s: float = 5.0
    burst_count: int = 6
    burst_window_s: float = 60.0


class MisuseDetector:
    """Remembers recent presses (monotonic seconds) and judges each new one."""

    def __init__(self, rules: MisuseRules = MisuseRules()):
        self.rules = rules
        self._presses: collections.deque[float] = collections.deque()

    def check(self, now: float) -> str | None:
        """Record a press at ``now``; return why it looks like misuse, or None."""
        last = self._presses[-1] if self._presses else None
        self._presses.append(now)
        horizon = now - self.rules.burst_window_s
        while self._presses and self._presses[0] < horizon:
            self._presses.popleft()
        if last is not None and now - last < self.rules.window_s:
            return "repeat"
        if len(self._presses) >= self.rules.burst_count:
            return "burst"
        return None
