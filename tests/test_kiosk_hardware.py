"""Physical buttons, LEDs and buzzer through gpiozero's mock pins; the backlight in sysfs."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from conftest import wait_for
from kiosk.backlight import Backlight
from kiosk.buttons import ButtonPanel
from kiosk.settings import Pins, parse_settings
from kiosk.terminal import Terminal

PINS = Pins(buttons=("GPIO5", "GPIO6", "GPIO13", "GPIO19"),
            leds=("GPIO12", "GPIO16", "GPIO20", "GPIO21"), buzzer="GPIO26")


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's own mock pins as the default factory; the previous one is restored."""
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def press(factory: MockFactory, pin: str) -> None:
    # Buttons pull up: pressed connects the pin to ground.
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()


def test_buttons_each_level_reaches_controller(mock_pins, controller, make_node):
    node = make_node("kiosk-h1", controller=controller)
    terminal = Terminal(node.emit, node.device_id, parse_settings({"misuse_window_s": 0}))
    with ButtonPanel(PINS, lambda level: terminal.press(level, "button"),
                     bounce_time=None) as panel:
        terminal.feedback.append(panel.feedback)
        for pin in PINS.buttons:
            press(mock_pins, pin)
        rows = wait_for(lambda: controller.reader().execute(
            "SELECT level, data FROM ratings ORDER BY ts").fetchall() if node.outbox.depth == 0
            and terminal.last_rating else None)
    assert sorted(r[0] for r in rows) == [1, 2, 3, 4]
    assert all('"source": "button"' in r[1] for r in rows)


def test_buttons_light_the_pressed_level_and_beep(mock_pins):
    pressed: list[int] = []
    with ButtonPanel(PINS, pressed.append, bounce_time=None, led_s=30) as panel:
        press(mock_pins, "GPIO13")
        assert pressed == [3]
        panel.feedback(3)
        wait_for(lambda: mock_pins.pin("GPIO20").state)
        assert [mock_pins.pin(p).state for p in PINS.leds] == [0, 0, 1, 0]
        wait_for(lambda: mock_pins.pin("GPIO26").state or
                 any(s for _, s in mock_pins.pin("GPIO26").states))


def test_buttons_repeated_press_is_flagged_not_dropped(mock_pins):
    events: list[dict] = []
    terminal = Terminal(lambda t, d: events.append(d) or {"id": str(len(events))}, "kiosk-h2")
    with ButtonPanel(PINS, lambda level: terminal.press(level, "button"), bounce_time=None):
        press(mock_pins, "GPIO5")
        press(mock_pins, "GPIO5")
    assert [e["misuse"] for e in events] == [False, True]


def test_buttons_refuse_a_pin_used_twice(mock_pins):
    with pytest.raises(OSError, match="cannot set up kiosk pins"):
        ButtonPanel(Pins(buttons=("GPIO5", "GPIO5")), lambda level: None)


def test_backlight_dims_when_closed_and_lights_when_open(tmp_path: pathlib.Path):
    device = tmp_path / "10-0045"
    device.mkdir()
    (device / "max_brightness").write_text("255\n")
    (device / "brightness").write_text("255\n")
    light = Backlight(tmp_path, dim_fraction=0.1)
    light.set_open(False)
    assert (device / "brightness").read_text() == "25\n"
    light.set_open(True)
    assert (device / "brightness").read_text() == "255\n"


def test_backlight_absent_does_nothing(tmp_path: pathlib.Path):
    light = Backlight(tmp_path / "none")
    light.set_open(False)
    assert not light.present
