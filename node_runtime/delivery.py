"""Delivery of the outbox: send in order, a bounded window in flight, until acked.

The broker's PUBACK only says the broker has the message; Mosquitto may
still drop it (``max_queued_messages``) and paho keeps its session in
memory. So an event leaves the outbox only when the controller's own ack,
sent after its commit, names it. Unacked events are sent again after a
reconnect or after ``resend_after`` seconds without an ack.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from node_runtime.outbox import Outbox

log = logging.getLogger(__name__)

Publish = Callable[[bytes], bool]  # payload -> sent to the broker (False: not connected)


class Delivery:
    """A thread that moves events from the outbox to the broker."""

    def __init__(
        self, outbox: Outbox, publish: Publish, *, window: int = 100,
        resend_after: float = 15.0,
    ):
        self.outbox = outbox
        self._publish = publish
        self.window = window
        self.resend_after = resend_after
        self._inflight: OrderedDict[str, tuple[int, float]] = OrderedDict()  # id -> (seq, sent)
        self._last_seq = 0
        self._connected = False
        self._wake = threading.Event()
        self._acks: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery", daemon=True)
        self.acked = 0
        outbox.add_listener(self._wake.set)

    def start(self) -> None:
        self._thread.start()

    def connected(self) -> None:
        """The session is up (again): resend everything unacked, in order."""
        self._connected = True
        self._rewind()
        self._wake.set()

    def disconnected(self) -> None:
        self._connected = False

    def acknowledged(self, ids: list[str]) -> None:
        """The controller committed these events (called from the network thread)."""
        self._acks.put(ids)
        self._wake.set()

    def _rewind(self) -> None:
        self._rewind_pending = True

    _rewind_pending = False

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._drain_acks()
                if self._rewind_pending:
                    self._rewind_pending = False
                    self._inflight.clear()
                    self._last_seq = 0
                self._check_resend()
                if self._connected:
                    self._fill_window()
            except Exception:  # keep delivering whatever one round hit
                log.exception("delivery round failed")
                self._stop.wait(1.0)

    def _drain_acks(self) -> None:
        ids: list[str] = []
        while True:
            try:
                ids.extend(self._acks.get_nowait())
            except queue.Empty:
                break
        if ids:
            self.acked += self.outbox.remove(ids)
            for event_id in ids:
                self._inflight.pop(event_id, None)

    def _check_resend(self) -> None:
        if not self._inflight:
            return
        oldest_seq, sent = next(iter(self._inflight.values()))
        if time.monotonic() - sent > self.resend_after:
            log.info("no ack for event seq %s in %.0f s: sending again", oldest_seq,
                     self.resend_after)
            self._inflight.clear()
            self._last_seq = oldest_seq - 1

    def _fill_window(self) -> None:
        room = self.window - len(self._inflight)
        if room <= 0:
            return
        for seq, event_id, payload in self.outbox.after(self._last_seq, room):
            if not self._publish(payload):
                self._connected = False
                return
            self._inflight[event_id] = (seq, time.monotonic())
            self._last_seq = seq

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
