"""The amplifier's power relay, through gpiozero (imported only here, lazily).

The relay is switched on a little before sound and off a little after it,
so the horn does not hiss while idle. Without a pin (a desk unit, a powered
speaker) the state is kept in software only. Tests use gpiozero's own
``MockFactory`` pins.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class Amplifier:
    """On/off control of the amplifier relay on GPIO ``pin`` (BCM numbering)."""

    def __init__(self, pin: int | str | None = None, *, active_high: bool = True,
                 pin_factory: Any = None):
        self.pin = pin
        self._lock = threading.Lock()
        self._device: Any = None
        self._on = False
        self.switched_at = time.monotonic()
        if pin is not None:
            from gpiozero import OutputDevice
            self._device = OutputDevice(pin, active_high=active_high, initial_value=False,
                                        pin_factory=pin_factory)

    @property
    def is_on(self) -> bool:
        return self._on

    def on(self) -> None:
        with self._lock:
            if not self._on:
                if self._device is not None:
                    self._device.on()
                self._on, self.switched_at = True, time.monotonic()
                log.info("amplifier on")

    def off(self) -> None:
        with self._lock:
            if self._on:
                if self._device is not None:
                    self._device.off()
                self._on, self.switched_at = False, time.monotonic()
                log.info("amplifier off")

    def close(self) -> None:
        self.off()
        if self._device is not None:
            self._device.close()
            self._device = None
