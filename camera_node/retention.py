"""Which footage goes when: old footage, then the oldest while over quota or short of space.

Recording never stops for want of space: the oldest segments make room for
the newest. Two kinds are never deleted here: a protected segment (footage
held for a dissatisfied citizen's service, as the role's holds say) and the
newest segment (the chain's head, and what is being looked at now). Every
deletion is recorded in the manifest first (see :meth:`SegmentStore.retire`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from camera_node.store import Segment, SegmentStore

log = logging.getLogger(__name__)


class Retention:
    """Retires segments of ``store``: older than ``max_age_s``; then, oldest first, while
    the store holds more than ``quota_bytes`` or its filesystem has less than
    ``min_free_bytes`` free. ``statvfs`` is a seam for tests (default :func:`os.statvfs`)."""

    def __init__(self, store: SegmentStore, *, max_age_s: float = 30 * 86400,
                 quota_bytes: int | None = None, min_free_bytes: int = 512 << 20,
                 protected: Callable[[Segment], bool] = lambda s: False,
                 statvfs: Callable[[Any], Any] = os.statvfs,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.max_age_s, self.quota_bytes, self.min_free_bytes = (
            max_age_s, quota_bytes, min_free_bytes)
        self.protected = protected
        self.statvfs = statvfs
        self.clock = clock
        self.retired_total = 0

    def free_bytes(self) -> int:
        """Free space on the store's filesystem, as an unprivileged writer sees it."""
        st = self.statvfs(self.store.root)
        return int(st.f_bavail * st.f_frsize)

    def enforce(self, now: float | None = None, *, need_bytes: int = 0) -> list[Segment]:
        """Retire what must go, oldest first; return it. ``need_bytes``: room wanted on
        top of ``min_free_bytes`` (a write that just failed for want of space).

        Walks from the oldest segment and stops as soon as enough has gone, so
        ``protected`` (a holds lookup) is asked about few segments, not the month's
        forty thousand. Age is read in seq order: a segment stamped by a clock that
        was wrong at boot goes by quota or space, not as "old"."""
        now = self.clock() if now is None else now
        walk = _Walk(self.store.segments()[:-1], self.protected)  # never the newest
        cutoff = now - self.max_age_s
        gone = self._retire(walk.take_while(lambda s: s.end < cutoff), "age")
        if self.quota_bytes is not None:
            excess = self.store.bytes_used() - self.quota_bytes
            gone += self._retire(walk.take_covering(excess), "quota")
        short = self.min_free_bytes + need_bytes - self.free_bytes()
        chosen = walk.take_covering(short)
        if short > 0 and sum(s.size for s in chosen) < short:
            log.error("disk short of %d bytes and every segment left is held or the newest",
                      short)
        gone += self._retire(chosen, "disk_full")
        self.retired_total += len(gone)
        return gone

    def _retire(self, segments: list[Segment], reason: str) -> list[Segment]:
        return self.store.retire(segments, reason) if segments else []


class _Walk:
    """The segments that may go, oldest first, each asked ``protected`` at most once."""

    def __init__(self, segments: list[Segment], protected: Callable[[Segment], bool]):
        self.segments, self.protected = segments, protected
        self.position = 0
        self._free = -1  # the position known not protected

    def _next(self) -> Segment | None:
        while self.position < len(self.segments):
            segment = self.segments[self.position]
            if self._free == self.position or not self.protected(segment):
                self._free = self.position
                return segment
            self.position += 1
        return None

    def take_while(self, condition: Callable[[Segment], bool]) -> list[Segment]:
        taken = []
        while (segment := self._next()) is not None and condition(segment):
            taken.append(segment)
            self.position += 1
        return taken

    def take_covering(self, amount: int) -> list[Segment]:
        """The oldest segments whose sizes add up to ``amount`` (fewer if there are not)."""
        taken: list[Segment] = []
        while amount > 0 and (segment := self._next()) is not None:
            taken.append(segment)
            amount -= segment.size
            self.position += 1
        return taken
