"""Per-device message rates: one device cannot take the controller's ingestion from the rest.

A token bucket per device: ``rate`` messages a second on average, bursts of
up to ``burst``. A device's own backlog after a week offline (a few thousand
ratings) drains at ``rate``; a device flooding the controller gets no more
than its share.

Over the limit, an event is neither stored nor acknowledged: the node keeps
it in its outbox and sends it again later (``resend_after``), so it is
delayed, never lost. Telemetry over the limit is dropped (the next one
replaces it). Both are counted. Buckets exist only for devices the broker let
in (the topic's device is the authenticated username), so their number is
bounded by the broker's accounts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Defaults: a kiosk files a rating every few minutes; 50 a second drains a week's
#: backlog in under a minute and leaves the controller for everyone else.
RATE = 50.0
BURST = 1000.0


class RateLimiter:
    """``allow(device)``: True while the device is within its rate."""

    def __init__(self, rate: float = RATE, burst: float = BURST, *,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate {rate} / burst {burst}: expected rate > 0 and burst >= 1")
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
