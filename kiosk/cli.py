"""``thanthien-kiosk``: the rating kiosk on the node runtime, with its Kivy window.

The entry point reads the environment and the node file's ``[kiosk]``
table, prepares Kivy (which must be configured before its window module
is imported), builds the terminal, the buttons and the backlight, and
hands them to the app.

The kiosk reaches the controller's HTTP API for officers' photos and to
upload screenshots; over HTTPS it checks the controller's certificate against
``[kiosk] controller_ca``, else ``[mqtt] tls_ca``, else the system's trusted
CAs (:func:`controller_ca`).
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import threading
from collections.abc import Sequence
from typing import Any

from kiosk.backlight import DEFAULT_ROOT, Backlight
from kiosk.errors import KioskConfigError
from kiosk.photos import PhotoCache
from kiosk.settings import Officer, parse_settings
from kiosk.terminal import Terminal
from kiosk.upload import upload_png
from node_runtime.cli import main as node_main
from node_runtime.config import NodeConfig
from node_runtime.https import controller_ca_file
from node_runtime.node import Node
from wire.rating import CMD_RESTART, CMD_SCREENSHOT

log = logging.getLogger(__name__)

#: The exit code of a restart asked for by the controller; systemd starts the kiosk again.
RESTART_EXIT = 75


def prepare_kivy(window: dict[str, Any], kivy_home: pathlib.Path) -> None:
    """Kivy reads argv and its config at import; set both first."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_HOME", str(kivy_home))
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    kivy_home.mkdir(parents=True, exist_ok=True)
    from kivy.config import Config
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("graphics", "width", str(window.get("width", 800)))
    Config.set("graphics", "height", str(window.get("height", 480)))
    Config.set("graphics", "fullscreen", "auto" if window.get("fullscreen", False) else "0")
    Config.set("graphics", "borderless", "1")
    Config.set("graphics", "position", "custom")
    Config.set("graphics", "left", "0")
    Config.set("graphics", "top", "0")
    inputs = window.get("inputs")
    if inputs is not None:
        # One provider per touch device, or Kivy sees every touch twice (see docs/kiosk.md).
        for name in list(Config.options("input")):
            Config.remove_option("input", name)
        for name, spec in inputs.items():
            Config.set("input", name, spec)


def controller_ca(config: NodeConfig) -> str | None:
    """The CA file the controller's certificate is checked against: the node file's
    ``[kiosk] controller_ca``, else ``[mqtt] tls_ca`` (the commune CA, which signs the
    controller's certificate too), else None (the system's trusted CAs)."""
    value = config.role_settings.get("controller_ca")
    if value is not None and not isinstance(value, str):
        raise KioskConfigError(f"[kiosk] controller_ca = {value!r}: expected a file path")
    return controller_ca_file(value, config.mqtt.tls_ca)


class KioskRole:
    """What the node runtime runs: the app on the main thread, hardware beside it."""

    def __init__(self, node: Node):
        raw = node.config.role_settings
        self.ca_file = controller_ca(node.config)
        window = raw.get("window", {})
        prepare_kivy(window, node.config.data_dir / "kivy")
        self.terminal = Terminal(node.emit, node.device_id, parse_settings(raw),
                                 clock_synced=node.clock_synced)
        node.on_config(self.terminal.configure)
        self.panel = None
        if self.terminal.settings.pins.buttons:
            from kiosk.buttons import ButtonPanel
            self.panel = ButtonPanel(self.terminal.settings.pins,
                                     lambda level: self.terminal.press(level, "button"))
            self.terminal.feedback.append(self.panel.feedback)
        self.backlight = Backlight(raw.get("backlight_root", DEFAULT_ROOT),
                                   device=raw.get("backlight_device"))
        self.terminal.on_open_change.append(self.backlight.set_open)
        self.photos = None
        if raw.get("controller_url"):
            self.photos = PhotoCache(node.config.data_dir / "photos", raw["controller_url"],
                                     ca_file=self.ca_file, on_new=self.terminal.redraw)
            self.photos.want(self.terminal.settings.photo_hashes())
            node.on_config(lambda _raw: self._want_photos())
        from kiosk.app import KioskApp
        self.app = KioskApp(self.terminal, photo_path=self._photo_path)
        node.health_checks.append(self.app.responsive)
        node.command(CMD_RESTART, self._restart)
        node.command(CMD_SCREENSHOT, self._screenshot)

    def _want_photos(self) -> None:
        if self.photos is not None:
            self.photos.want(self.terminal.settings.photo_hashes())

    def _photo_path(self, officer: Officer) -> pathlib.Path | None:
        return self.photos.path(officer.photo_sha256) if self.photos is not None else None

    def _restart(self, args: dict[str, Any]) -> dict[str, Any]:
        # Leave a moment for the command's result to be recorded before the loop ends.
        threading.Timer(0.5, self.app.restart, args=(RESTART_EXIT,)).start()
        return {"restarting": True}

    def _screenshot(self, args: dict[str, Any]) -> dict[str, Any]:
        url = args.get("url")
        if not isinstance(url, str):
            raise ValueError(f"screenshot needs an upload 'url', got {url!r}")
        png = self.app.screenshot()
        status = upload_png(url, png, ca_file=self.ca_file)
        return {"bytes": len(png), "status": status}

    def run(self, stop: threading.Event) -> int:
        self.app.stop_event = stop
        self.app.run()
        return self.app.exit_code

    def close(self) -> None:
        if self.panel is not None:
            self.panel.close()
        if self.photos is not None:
            self.photos.close()


def main(argv: Sequence[str] | None = None) -> int:
    return node_main(KioskRole, argv, prog="thanthien-kiosk",
                     description="The citizens' rating kiosk (Kivy) on the node runtime.")


if __name__ == "__main__":
    sys.exit(main())
