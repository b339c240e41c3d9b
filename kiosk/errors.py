"""Errors raised by the kiosk."""

from wire.errors import ThanthienError


class KioskError(ThanthienError):
    """Base of the kiosk's errors."""


class KioskConfigError(KioskError, ValueError):
    """A kiosk setting (from the node file or the controller) that cannot be used."""


class HardwareError(KioskError, OSError):
    """Buttons, LEDs, buzzer or backlight could not be set up or driven."""


class UploadError(KioskError, OSError):
    """A screenshot could not be uploaded to the controller."""


class ScreenshotError(KioskError, RuntimeError):
    """The screen could not be captured."""
