"""Per-device message rates: one device cannot take the controller's ingestion from the rest.

A token bucket per device: ``rate`` messages a second on average, bursts of
up to ``burst``. A kiosk's backlog after a week offline at a busy desk (a
few hundred ratings and their details) passes at once; a device flooding the
controller gets no more than its rate.

Events over the limit are delayed, never lost (:class:`Pacer`): up to
``per_device`` of them (a node's window of unacknowledged events) wait in
memory and are handed on as the device's bucket refills, so a long backlog
still drains at ``rate``; beyond that (or :data:`TOTAL` for all devices) an
event is neither stored nor acknowledged, and the node, which keeps it in its
outbox, sends it again after ``resend_after``. Telemetry over the limit is
dropped (the next report replaces it). All of it is counted. Buckets and
queues exist only for devices the broker let in (the topic's device is the
authenticated username), so their number is bounded by the broker's accounts.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from controller.errors import InvalidRequest

log = logging.getLogger(__name__)

#: Defaults: a kiosk files a rating every few minutes. 50 a second drains even a
#: month's backlog in a minute and leaves the controller for everyone else.
RATE = 50.0
BURST = 2000.0
#: Events held in memory, per device (a node's outbox window is 100) and in all.
PER_DEVICE = 200
TOTAL = 20_000


class RateLimiter:
    """``allow(device)``: True while the device is within its rate."""

    def __init__(self, rate: float = RATE, burst: float = BURST, *,
                 clock: Callable[[], float] = time.monotonic):
        if not (rate > 0 and burst >= 1):  # NaN too
            raise InvalidRequest(f"device rate {rate} / burst {burst}: expected a rate above "
                                 "0 messages a second and a burst of at least 1")
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # device -> (tokens, at)

    def allow(self, device_id: str) -> bool:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(device_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[device_id] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


class Pacer:
    """Hands events to ``deliver`` within each device's rate; holds back the excess.

    ``offer`` runs on the MQTT thread and never blocks; a thread of its own hands
    on the held events as buckets refill (every ``tick`` seconds)."""

    def __init__(self, limiter: RateLimiter, deliver: Callable[[dict[str, Any]], None],
                 count: Callable[[str, int], None], *, per_device: int = PER_DEVICE,
                 total: int = TOTAL, tick: float = 0.05):
        self.limiter, self._deliver, self._count = limiter, deliver, count
        self.per_device, self.total, self.tick = per_device, total, tick
        self._lock = threading.Lock()
        self._held: dict[str, collections.deque[dict[str, Any]]] = {}
        self._size = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pacer", daemon=True)

    @property
    def held(self) -> int:
        return self._size

    def offer(self, device_id: str, event: dict[str, Any]) -> str:
        """``delivered`` now, ``held`` back, or ``deferred``: not acknowledged, so the
        node sends it again later."""
        with self._lock:
            queue = self._held.get(device_id)
            if not queue and self.limiter.allow(device_id):
                outcome = "delivered"
            elif (queue is None or len(queue) < self.per_device) and self._size < self.total:
                self._held.setdefault(device_id, collections.deque()).append(event)
                self._size += 1
                outcome = "held"
            else:
                outcome = "deferred"
        if outcome == "delivered":
            self._deliver(event)
        else:
            self._count(f"events_{'delayed' if outcome == 'held' else 'deferred'}", 1)
        return outcome

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                for event in self._due():
                    self._deliver(event)
            except Exception:
                log.exception("handing on held events failed")

    def _due(self) -> list[dict[str, Any]]:
        due = []
        with self._lock:
            for device_id in list(self._held):
                queue = self._held[device_id]
                while queue and self.limiter.allow(device_id):
                    due.append(queue.popleft())
                if not queue:
                    del self._held[device_id]
            self._size -= len(due)
        return due
