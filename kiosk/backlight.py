"""The display's backlight through sysfs (``/sys/class/backlight/<device>``).

The official Pi touchscreens expose ``brightness`` and ``max_brightness``
there (``10-0045`` for the 7" display, ``rpi_backlight`` on older kernels).
Where no backlight exists (HDMI monitors, a laptop) this does nothing.
"""

from __future__ import annotations

import logging
import pathlib

from kiosk.errors import HardwareError

log = logging.getLogger(__name__)

DEFAULT_ROOT = "/sys/class/backlight"


class Backlight:
    """Full brightness while open; ``dim_fraction`` of it while closed."""

    def __init__(self, root: str | pathlib.Path = DEFAULT_ROOT, *, device: str | None = None,
                 dim_fraction: float = 0.0):
        self.dim_fraction = dim_fraction
        self.path = _find(pathlib.Path(root), device)
        if self.path is None:
            log.info("no backlight under %s; dimming disabled", root)

    @property
    def present(self) -> bool:
        return self.path is not None

    def set_open(self, is_open: bool) -> None:
        """Light the screen for office hours, dim it outside them."""
        if self.path is None:
            return
        try:
            top = int((self.path / "max_brightness").read_text().strip())
            value = top if is_open else int(top * self.dim_fraction)
            (self.path / "brightness").write_text(f"{value}\n")
        except (OSError, ValueError) as exc:
            raise HardwareError(f"cannot set backlight {self.path}: {exc}") from None
        log.info("backlight %s set to %s", self.path.name, value)


def _find(root: pathlib.Path, device: str | None) -> pathlib.Path | None:
    if device is not None:
        path = root / device
        return path if (path / "brightness").exists() else None
    if not root.is_dir():
        return None
    for path in sorted(root.iterdir()):
        if (path / "brightness").exists() and (path / "max_brightness").exists():
            return path
    return None
