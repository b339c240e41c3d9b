"""``python -m kiosk.screenshots --size 800x480 --out docs/screenshots``: a PNG of each screen.

Runs the real app (under any X display, e.g. ``xvfb-run``) with sample
settings and no node: ratings go to a list. ``make screenshots`` renders
800x480 and 1280x800 into ``docs/screenshots`` so people can see the kiosk
without running it.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

SAMPLE = {
    "commune": "UBND xã Tân An",
    "desk": "Bộ phận một cửa — Quầy 1",
    "officer": {"id": "lan", "name": "Nguyễn Thị Lan", "title": "Công chức Tư pháp – Hộ tịch"},
    "info": ["Đường dây nóng Chủ tịch UBND xã: 0251 3xxx xxx",
             "Bí thư Đảng ủy xã: 09xx xxx xxx"],
    # The commune's public information (controller: PUT /api/v1/public-info) replaces the
    # free text above on the idle screen; the numbers are placeholders.
    "public_info": {
        "hotline": "0251 3xxx xxx",
        "contacts": [
            {"name": "Trần Văn Hùng", "title": "Bí thư Đảng ủy xã", "phone": "09xx xxx 101"},
            {"name": "Lê Thị Mai", "title": "Chủ tịch UBND xã", "phone": "09xx xxx 102"}],
        "notices": ["Từ 01/7 tiếp nhận hồ sơ cấp căn cước vào sáng thứ Bảy."],
    },
    "ask_dossier": True,
    "office_hours": [{"days": "mon-fri", "open": "07:00", "close": "11:30"},
                     {"days": "mon-fri", "open": "13:00", "close": "17:00"},
                     {"days": "sat", "open": "07:00", "close": "11:30"}],
}


def _steps(terminal: Any) -> list[tuple[str, Callable[[], Any]]]:
    from kiosk.flow import Screen

    def follow_up() -> None:
        terminal.press(4)
        terminal.toggle_reason("waited")

    def dossier() -> None:
        terminal.reasons_done()
        for key in "H26.15-0042":
            terminal.type_key(key)

    def english_idle() -> None:
        terminal.flow.set_open(True, 0)
        terminal.toggle_language()
        terminal.flow.screen = Screen.IDLE

    return [
        ("idle", lambda: None),
        ("follow_up", follow_up),
        ("dossier", dossier),
        ("thanks", lambda: terminal.type_key("enter")),
        ("closed", lambda: terminal.flow.set_open(False, 0)),
        ("idle_en", english_idle),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.screenshots")
    parser.add_argument("--size", default="800x480")
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.split("x"))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level="WARNING")
    home = tempfile.mkdtemp(prefix="kivy-")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kiosk.cli import prepare_kivy
    prepare_kivy({"width": width, "height": height}, pathlib.Path(home))
    from kivy.clock import Clock

    from kiosk.app import KioskApp
    from kiosk.settings import parse_settings
    from kiosk.terminal import Terminal

    emitted: list[dict[str, Any]] = []

    def emit(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        emitted.append(data)
        return {"id": str(len(emitted))}

    terminal = Terminal(emit, "kiosk-demo", parse_settings(SAMPLE))
    terminal.settings = parse_settings({"thank_you_s": 60, "idle_timeout_s": 600},
                                       terminal.settings)
    terminal.flow.configure(terminal.settings)
    app = KioskApp(terminal)
    steps = _steps(terminal)

    def shoot(index: int) -> None:
        if index == len(steps):
            app.stop()
            return
        name, action = steps[index]
        action()
        view = app.view
        assert view is not None
        view.refresh()

        def save(_dt: float) -> None:
            view.export_to_png(str(out / f"kiosk-{name}-{width}x{height}.png"))
            Clock.schedule_once(lambda _dt: shoot(index + 1), 0.2)
        Clock.schedule_once(save, 1.0)

    # No ticking: the screens must stay put while they are captured.
    app._tick = lambda _dt: None  # type: ignore[method-assign]
    Clock.schedule_once(lambda _dt: shoot(0), 1.0)
    app.run()
    print(f"screenshots at {width}x{height} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
