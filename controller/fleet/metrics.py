"""Counters the controller keeps about what it received and refused."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any


class Metrics:
    """Thread-safe counters plus the last few rejections, for the health API."""

    def __init__(self, keep: int = 50):
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.rejections: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.started = time.time()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def reject(self, reason: str, topic: str, detail: str) -> None:
        with self._lock:
            self.rejections[reason] += 1
            self.recent.append({"at": time.time(), "reason": reason, "topic": topic,
                                "detail": detail[:300]})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "uptime_s": round(time.time() - self.started, 1),
                "counts": dict(self.counts),
                "rejections": dict(self.rejections),
                "recent_rejections": list(self.recent),
            }
