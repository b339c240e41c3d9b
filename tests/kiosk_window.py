"""The real kiosk in a real window: Xvfb on a free display, the kiosk as a subprocess.

Touches are real pointer clicks delivered by ``xdotool`` through the X
server, which SDL2 turns into Kivy touches. ``DISPLAY`` is set only in the
environment of the processes started here, never in the test's own.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

from conftest import DEVICE_PASSWORD, wait_for
from kiosk import layout

# The X screen is larger than the kiosk window, so the pointer can leave it: SDL2
# ignores clicks until the pointer has entered its window at least once.
SCREEN = (1400, 900)
WINDOW_TITLE = "thanthien kiosk"
REPO = pathlib.Path(__file__).resolve().parent.parent


class Xvfb:
    """An X server on a display number it picks itself (``-displayfd``)."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.process.kill()
            raise RuntimeError("Xvfb did not report a display number")
        self.display = f":{number}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


class KioskProcess:
    """``python -m kiosk.cli`` under Xvfb; its log is read to follow the screens."""

    def __init__(self, xvfb: Xvfb, folder: pathlib.Path, device_id: str, port: int,
                 size: tuple[int, int] = (800, 480), env: dict[str, str] | None = None,
                 **kiosk: Any):
        self.xvfb, self.size = xvfb, size
        self.extra_env = env or {}
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "node.toml"
        kiosk.setdefault("window", {"width": size[0], "height": size[1]})
        lines = [
            "[device]", f'id = "{device_id}"', 'role = "kiosk"', f'data_dir = "{folder}/data"',
            "[mqtt]", f"port = {port}", f'password = "{DEVICE_PASSWORD}"', "keepalive = 5",
            "reconnect_min = 0.1", "reconnect_max = 1.0",
            "[runtime]", 'clock_check = "always"', "resend_after = 2.0",
            "[kiosk]", *(f"{k} = {toml_value(v)}" for k, v in kiosk.items()),
        ]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log_path = folder / "kiosk.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> KioskProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "--config", str(self.config)],
            cwd=REPO, env={**self.xvfb.env(), **self.extra_env}, stdout=self._log,
            stderr=subprocess.STDOUT)
        self.wait_screen("idle", timeout=60)
        # The window is mapped a moment after the first frame; clicks before that are lost.
        wait_for(self._mapped, timeout=30)
        # SDL2 may drop the first clicks after mapping; click on the invitation (which does
        # nothing) until the kiosk logs a touch, so the test's own taps all count.
        invite = (0.3, (layout.INVITE[0] + layout.INVITE[1]) / 2)
        wait_for(lambda: self._probe(invite), timeout=30, interval=0.5)
        return self

    def _probe(self, where: tuple[float, float]) -> bool:
        if "touch at" in self.log():
            return True
        self.tap(where)
        return False

    def window_id(self) -> str:
        tree = subprocess.run(["xwininfo", "-root", "-tree"], env=self.xvfb.env(),
                              capture_output=True, text=True, timeout=10).stdout
        for line in tree.splitlines():
            if f'"{WINDOW_TITLE}"' in line:
                return line.split()[0]
        raise AssertionError(f"no kiosk window on {self.xvfb.display}")

    def _mapped(self) -> bool:
        tree = subprocess.run(["xwininfo", "-root", "-tree"], env=self.xvfb.env(),
                              capture_output=True, text=True, timeout=10).stdout
        return f'"{WINDOW_TITLE}"' in tree and f"{self.size[0]}x{self.size[1]}+0+0" in tree

    def log(self) -> str:
        return self.log_path.read_bytes()[self._offset:].decode(errors="replace")

    def screens(self) -> list[str]:
        return [line.rsplit("kiosk screen: ", 1)[1].strip()
                for line in self.log().splitlines() if "kiosk screen: " in line]

    def wait_screen(self, name: str, timeout: float = 20.0, after: int = 0) -> None:
        """Wait until the kiosk has shown ``name`` as its ``after``-th screen or later."""
        def shown() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"kiosk exited ({self.process.returncode}):\n{self.log()}")
            return name in self.screens()[after:]
        wait_for(shown, timeout=timeout)

    def tap(self, fraction: tuple[float, float]) -> None:
        """Click the window at ``fraction`` of its width and height (from the top left)."""
        x, y = round(fraction[0] * self.size[0]), round(fraction[1] * self.size[1])
        # Leave the window and come back, so SDL2 always sees the pointer enter it.
        subprocess.run(["xdotool", "mousemove", "--sync", str(SCREEN[0] - 1), str(SCREEN[1] - 1),
                        "mousemove", "--sync", str(x), str(y), "click", "1"],
                       env=self.xvfb.env(), check=True, timeout=10)

    def type(self, keys: str, *, enter: bool = True) -> None:
        """Type ``keys`` as a keyboard (or a barcode scanner) would, then Return."""
        # No window manager gives the window keyboard focus; a kiosk has only this window.
        # Separate runs: chained after windowfocus, xdotool would send synthetic events to
        # that window, which SDL2 ignores; alone it types through XTEST like a keyboard.
        env = self.xvfb.env()
        subprocess.run(["xdotool", "windowfocus", "--sync", self.window_id()], env=env,
                       check=True, timeout=10)
        subprocess.run(["xdotool", "type", "--delay", "20", keys], env=env, check=True,
                       timeout=10)
        if enter:
            subprocess.run(["xdotool", "key", "Return"], env=env, check=True, timeout=10)

    def key(self, name: str) -> None:
        """Press one key (an xdotool key name such as ``F1``), as a keyboard would."""
        env = self.xvfb.env()
        subprocess.run(["xdotool", "windowfocus", "--sync", self.window_id()], env=env,
                       check=True, timeout=10)
        subprocess.run(["xdotool", "key", name], env=env, check=True, timeout=10)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None:
            self._log.close()
        return None if self.process is None else self.process.returncode


def wait_until(predicate: Any, timeout: float = 20.0) -> Any:
    return wait_for(predicate, timeout=timeout)


def pause(seconds: float) -> None:
    """Let a pointer move settle (not an assertion on time)."""
    time.sleep(seconds)


class AttachedKiosk(KioskProcess):
    """A kiosk someone else started (the demo): only its window and its log."""

    def __init__(self, xvfb: Xvfb, log_path: pathlib.Path):
        self.xvfb, self.size, self.log_path = xvfb, (800, 480), log_path
        self.process = None
        self._offset = 0


def attach_window(xvfb: Xvfb, log_path: pathlib.Path) -> KioskProcess:
    """Wait for a kiosk started elsewhere to show its idle screen and take taps."""
    kiosk = AttachedKiosk(xvfb, log_path)
    wait_for(log_path.exists, timeout=60)
    kiosk.wait_screen("idle", timeout=60)
    wait_for(kiosk._mapped, timeout=30)
    invite = (0.3, (layout.INVITE[0] + layout.INVITE[1]) / 2)
    wait_for(lambda: kiosk._probe(invite), timeout=30, interval=0.5)
    return kiosk
