"""Physical inputs through gpiozero: one button per level, an LED per button, a buzzer.

The one module that imports gpiozero, and only when a panel is built, so
a laptop or a touch-only kiosk never needs it. Tests use gpiozero's own
``MockFactory`` (pass ``pin_factory`` or set ``GPIOZERO_PIN_FACTORY=mock``
in the entry point).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kiosk.errors import HardwareError
from kiosk.settings import Pins

log = logging.getLogger(__name__)


class ButtonPanel:
    """Calls ``on_press(level)`` (1 = best, the first pin) when a button is pressed."""

    def __init__(self, pins: Pins, on_press: Callable[[int], Any], *, pin_factory: Any = None,
                 bounce_time: float | None = 0.05, led_s: float = 1.0, beep_s: float = 0.1):
        try:
            from gpiozero import LED, Button, Buzzer
        except ImportError as exc:
            raise HardwareError(f"buttons need gpiozero: {exc}") from None
        self.led_s, self.beep_s = led_s, beep_s
        self.devices: list[Any] = []
        try:
            self.buttons = [self._add(Button(pin, pin_factory=pin_factory,
                                             bounce_time=bounce_time)) for pin in pins.buttons]
            self.leds = [self._add(LED(pin, pin_factory=pin_factory)) for pin in pins.leds]
            self.buzzer = (self._add(Buzzer(pins.buzzer, pin_factory=pin_factory))
                           if pins.buzzer else None)
        except Exception as exc:
            self.close()
            raise HardwareError(f"cannot set up kiosk pins {pins}: {exc}") from exc
        for level, button in enumerate(self.buttons, start=1):
            button.when_pressed = _pressed(on_press, level)
        log.info("%s buttons, %s LEDs, buzzer %s", len(self.buttons), len(self.leds),
                 pins.buzzer or "none")

    def _add(self, device: Any) -> Any:
        self.devices.append(device)
        return device

    def feedback(self, level: int) -> None:
        """Light the pressed level's LED and beep: the citizen sees and hears it counted."""
        if 1 <= level <= len(self.leds):
            self.leds[level - 1].blink(on_time=self.led_s, off_time=0, n=1, background=True)
        if self.buzzer is not None:
            self.buzzer.beep(on_time=self.beep_s, off_time=0, n=1, background=True)

    def close(self) -> None:
        for device in reversed(self.devices):
            try:
                device.close()
            except Exception:
                log.exception("closing %r failed", device)
        self.devices.clear()

    def __enter__(self) -> ButtonPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pressed(on_press: Callable[[int], Any], level: int) -> Callable[[], None]:
    # gpiozero passes the device to callbacks that take an argument; this one takes none.
    def pressed() -> None:
        try:
            on_press(level)
        except Exception:
            log.exception("button press of level %s failed", level)
    return pressed
