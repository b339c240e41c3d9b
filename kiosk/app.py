"""The Kivy face of the kiosk: draws the :class:`Terminal`'s screen and feeds it touches.

The only module that imports Kivy. It holds no rating logic: a tap calls
the terminal (which records the rating durably), and the terminal's
change notice schedules a redraw on Kivy's thread. Sizes derive from the
window, so one layout serves 800x480 up to 1920x1080.
"""

from __future__ import annotations

import logging
import pathlib
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.graphics import Color, Ellipse, Line, RoundedRectangle
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.togglebutton import ToggleButton
from kivy.uix.widget import Widget
from kivy.utils import escape_markup, get_color_from_hex

from kiosk import layout
from kiosk.errors import ScreenshotError
from kiosk.flow import Screen
from kiosk.i18n import pick, text
from kiosk.settings import Officer
from kiosk.terminal import Terminal
from wire.rating import Level, levels

log = logging.getLogger(__name__)

BACKGROUND = "f4f1ea"
INK = "1f2a30"
TICK_S = 0.1
_STATIC = (Screen.IDLE, Screen.THANKS, Screen.CLOSED)


def _band(top: float, bottom: float, left: float = 0.0, right: float = 1.0) -> dict[str, Any]:
    return {"size_hint": (right - left, bottom - top), "pos_hint": {"x": left, "y": 1 - bottom}}


def _label(words: str, size: float, **kw: Any) -> Label:
    kw.setdefault("halign", "center")
    label = Label(text=words, color=get_color_from_hex(kw.pop("color", INK)), valign="middle",
                  **kw)
    label.bind(size=lambda w, s: setattr(w, "text_size", s))
    label.font_size = size
    return label


class Face(ButtonBehavior, Widget):
    """A big coloured face with its word: one level of the scale."""

    def __init__(self, level: Level, words: str, **kw: Any):
        super().__init__(**kw)
        self.level = level
        self.word = _label(words, 20, color="ffffff", bold=True)
        self.add_widget(self.word)
        self.bind(pos=self._draw, size=self._draw)

    def _draw(self, *_: Any) -> None:
        self.canvas.before.clear()
        x, y = float(self.x), float(self.y)
        w, h = float(self.width), float(self.height)
        pad = min(w, h) * 0.04
        wide = w > 1.6 * h  # portrait screens stack the faces: face left, word right
        if wide:
            d = h - 2 * pad
            cx, cy = x + pad + d / 2, y + h / 2
        else:
            d = min(w - 2 * pad, (h - 2 * pad) * 0.72)
            cx, cy = x + w / 2, y + h - pad - d / 2
        with self.canvas.before:
            Color(*get_color_from_hex(self.level.colour))
            RoundedRectangle(pos=(x + pad, y + pad), size=(w - 2 * pad, h - 2 * pad),
                             radius=[pad * 2])
            Color(1, 0.93, 0.55)
            Ellipse(pos=(cx - d / 2, cy - d / 2), size=(d, d))
            Color(0.12, 0.12, 0.12)
            e = d * 0.1
            for dx in (-d * 0.18, d * 0.18):
                Ellipse(pos=(cx + dx - e / 2, cy + d * 0.1), size=(e, e))
            self._mouth(cx, cy, d)
        if wide:
            self.word.pos = (x + 2 * pad + d, y + pad)
            self.word.size = (w - 3 * pad - d, h - 2 * pad)
            self.word.font_size = max(14, min(self.word.width * 0.1, h * 0.3))
        else:
            self.word.pos = (x + pad, y + pad)
            self.word.size = (w - 2 * pad, h - 2 * pad - d)
            self.word.font_size = max(14, min(w * 0.11, h * 0.09))

    def _mouth(self, cx: float, cy: float, d: float) -> None:
        width = max(2.0, d * 0.04)
        m = d * 0.5
        face = self.level.face
        if face == "neutral":
            Line(points=[cx - m / 2, cy - d * 0.2, cx + m / 2, cy - d * 0.2], width=width)
        elif face in ("happy", "very_happy"):
            deep = 0.6 if face == "very_happy" else 0.35
            Line(ellipse=(cx - m / 2, cy - d * 0.3, m, m * deep * 2, 120, 240), width=width)
        else:
            deep = 0.6 if face == "very_sad" else 0.35
            Line(ellipse=(cx - m / 2, cy - d * 0.3 - m * deep, m, m * deep * 2, -60, 60),
                 width=width)


class KioskView(FloatLayout):
    """Rebuilds the current screen when the terminal says something changed."""

    def __init__(self, terminal: Terminal,
                 photo_path: Callable[[Officer], pathlib.Path | None] = lambda o: None,
                 **kw: Any):
        super().__init__(**kw)
        self.terminal = terminal
        self.photo_path = photo_path
        self._info_index = 0
        self._info_label: Label | None = None
        self._shown: Screen | None = None
        self._cache: dict[Screen, tuple[Any, list[Widget], Label | None]] = {}
        with self.canvas.before:
            Color(*get_color_from_hex(BACKGROUND))
            self._bg = RoundedRectangle(pos=self.pos, size=self.size)
        self.bind(pos=self._fit, size=self._fit)

    def on_touch_down(self, touch: Any) -> bool:
        # One line per touch: two lines per tap means two input providers read one device.
        log.info("touch at %.0f,%.0f from %s", touch.x, touch.y, touch.device)
        return bool(super().on_touch_down(touch))

    def _fit(self, *_: Any) -> None:
        self._bg.pos, self._bg.size = self.pos, self.size
        self.refresh()

    @property
    def lang(self) -> str:
        return self.terminal.language

    def refresh(self, *_: Any) -> None:
        screen = self.terminal.screen
        self.clear_widgets()
        officer = self.terminal.officer()
        # Compared by value (not id: a replaced settings object's id may be reused).
        key = (screen, self.terminal.language, self.terminal.settings, officer,
               self.photo_path(officer), tuple(self.size), self.terminal.storage_error is None)
        cached = self._cache.get(screen)
        if screen in _STATIC and cached is not None and cached[0] == key:
            # Static screens are built once per look: no new textures per tap (months of
            # uptime must not grow memory), and the thank-you appears a frame sooner.
            for widget in cached[1]:
                self.add_widget(widget)
            self._info_label = cached[2]
        else:
            self._info_label = None
            builder = {Screen.IDLE: self._idle, Screen.FOLLOW_UP: self._follow_up,
                       Screen.DOSSIER: self._dossier, Screen.THANKS: self._thanks,
                       Screen.CLOSED: self._closed}[screen]
            builder()
            if screen in _STATIC:
                self._cache[screen] = (key, list(reversed(self.children)), self._info_label)
        if screen is not self._shown:
            self._shown = screen
            # Logged on the next frame, once drawn; tests and technicians follow this line.
            Clock.schedule_once(lambda _dt: log.info("kiosk screen: %s", screen.value))

    def font(self, fraction: float) -> float:
        """A font size as a fraction of the height of an 800x480-shaped screen."""
        return max(12.0, min(self.height, self.width * 0.75) * fraction)

    @property
    def portrait(self) -> bool:
        return bool(self.height > self.width)

    # -- screens ------------------------------------------------------------------------

    def _idle(self) -> None:
        s, lang = self.terminal.settings, self.lang
        self.add_widget(_label(f"{s.commune}\n[b]{s.desk}[/b]", self.font(0.045), markup=True,
                               halign="left", **_band(*layout.HEADER, 0.02, 0.45)))
        self._officer(*layout.HEADER)
        lang_button = Button(text=text("language", lang), font_size=self.font(0.04),
                             **_band(layout.LANGUAGE_BUTTON[2], layout.LANGUAGE_BUTTON[3],
                                     layout.LANGUAGE_BUTTON[0], layout.LANGUAGE_BUTTON[1]))
        lang_button.bind(on_press=lambda *_: self.terminal.toggle_language())
        self.add_widget(lang_button)
        self.add_widget(_label(text("invite", lang), self.font(0.06), bold=True,
                               **_band(*layout.INVITE)))
        scale = levels(s.scale)
        top, bottom = layout.FACES
        for level in scale:
            n = level.number - 1
            if self.portrait:
                step = (bottom - top) / len(scale)
                band = _band(top + n * step, top + (n + 1) * step)
            else:
                band = _band(top, bottom, n / len(scale), (n + 1) / len(scale))
            face = Face(level, pick({"vi": level.vi, "en": level.en}, lang), **band)
            face.bind(on_press=lambda w: self.terminal.press(w.level.number, "touch"))
            self.add_widget(face)
        self._info(lang)

    def _info(self, lang: str) -> None:
        """The information band: the commune's hotline (left, large) and rotating pages of
        officials' phone numbers and notices; else the kiosk's own free text."""
        s, left = self.terminal.settings, 0.02
        items = s.info_items()
        if s.hotline:
            words = (f"{text('hotline', lang)}\n[b][size={int(self.font(0.06))}]"
                     f"{escape_markup(s.hotline)}[/size][/b]")
            right = layout.HOTLINE_RIGHT[self.portrait]
            self.add_widget(_label(words, self.font(0.032), markup=True,
                                   **_band(*layout.INFO, 0.02, right)))
            left = right + 0.02
        if items:
            item = items[self._info_index % len(items)]
            size = self.font(0.045) if s.public_info is None else self.font(0.032)
            self._info_label = _label(pick(item, lang), size,
                                      halign="center" if s.public_info is None else "left",
                                      **_band(*layout.INFO, left, 0.98))
            self.add_widget(self._info_label)
        if s.public_info is not None:
            # Once per build (a settings, language or officer change), not per rotation.
            log.info("idle screen: hotline %r, %d information pages",
                     s.hotline, len(items))

    def _officer(self, top: float, bottom: float) -> None:
        officer = self.terminal.officer()
        if not officer.name:
            return
        photo = officer.photo if officer.photo and pathlib.Path(officer.photo).is_file() else (
            self.photo_path(officer))
        if photo:
            self.add_widget(Image(source=str(photo), **_band(top, bottom, 0.46, 0.56)))
        words = f"{text('on_duty', self.lang)}\n[b]{officer.name}[/b]\n{officer.title}"
        self.add_widget(_label(words, self.font(0.03), markup=True, halign="left",
                               **_band(top, bottom, 0.57, 0.855)))

    def rotate_info(self, *_: Any) -> None:
        info = self.terminal.settings.info_items()
        if self._info_label is not None and info:
            self._info_index = (self._info_index + 1) % len(info)
            self._info_label.text = pick(info[self._info_index], self.lang)

    def _follow_up(self) -> None:
        t, lang = self.terminal, self.lang
        self.add_widget(_label(f"{text('why', lang)}\n{text('choose_any', lang)}",
                               self.font(0.05), **_band(*layout.WHY)))
        reasons = t.settings.reasons
        chosen = t.flow.answer.reasons if t.flow.answer else []
        rows = (len(reasons) + 1) // 2
        top, bottom = layout.REASONS
        for i, reason in enumerate(reasons):
            row, col = divmod(i, 2)
            row_top = top + (bottom - top) * row / rows
            toggle = ToggleButton(
                text=pick(reason, lang), font_size=self.font(0.045),
                state="down" if reason["key"] in chosen else "normal",
                **_band(row_top + 0.01, row_top + (bottom - top) / rows - 0.01,
                        col / 2 + 0.01, (col + 1) / 2 - 0.01))
            toggle.bind(on_press=lambda w, key=reason["key"]: t.toggle_reason(key))
            self.add_widget(toggle)
        skip = Button(text=text("skip", lang), font_size=self.font(0.05),
                      **_band(*layout.ACTIONS, 0.02, 0.48))
        skip.bind(on_press=lambda *_: t.reasons_done(skip=True))
        send = Button(text=text("done", lang), font_size=self.font(0.05), bold=True,
                      **_band(*layout.ACTIONS, 0.52, 0.98))
        send.bind(on_press=lambda *_: t.reasons_done())
        self.add_widget(skip)
        self.add_widget(send)

    def _dossier(self) -> None:
        t, lang = self.terminal, self.lang
        self.add_widget(_label(text("dossier", lang), self.font(0.05),
                               **_band(*layout.DOSSIER_TITLE)))
        code = t.flow.answer.dossier if t.flow.answer else ""
        self.add_widget(_label(code or "—", self.font(0.08), bold=True,
                               **_band(*layout.DOSSIER_FIELD)))
        for row in layout.KEYPAD_ROWS:
            for key in row:
                words = {"back": text("delete", lang), "enter": "OK",
                         "skip": text("skip", lang)}.get(key, key)
                left, right, top, bottom = layout.key_rect(key)
                button = Button(text=words, font_size=self.font(0.06),
                                **_band(top, bottom, left, right))
                button.bind(on_press=lambda w, k=key: t.type_key(k))
                self.add_widget(button)

    def _thanks(self) -> None:
        lang = self.lang
        if self.terminal.storage_error is not None:  # held in memory, not on disk yet
            self.add_widget(_label(f"[b]{text('unrecorded', lang)}[/b]\n"
                                   f"{text('unrecorded_sub', lang)}", self.font(0.07),
                                   markup=True, color="b00020",
                                   **_band(0.1, 0.9, 0.05, 0.95)))
            return
        self.add_widget(_label(f"[b]{text('thanks', lang)}[/b]\n{text('thanks_sub', lang)}",
                               self.font(0.08), markup=True, **_band(0.1, 0.9, 0.05, 0.95)))

    def _closed(self) -> None:
        lang = self.lang
        hours = "\n".join(self.terminal.settings.office_hours.describe(lang))
        self.add_widget(_label(f"[b]{text('closed', lang)}[/b]\n{text('closed_sub', lang)}"
                               f"\n\n{hours}", self.font(0.06), markup=True, color="999999",
                               **_band(0.1, 0.9, 0.05, 0.95)))


class KioskApp(App):
    """Runs on the main thread until ``stop_event`` is set or the app is asked to restart."""

    title = "thanthien kiosk"
    #: F1 (a keyboard left plugged in, or a scanner programmed to send it) would open
    #: Kivy's settings panel over the rating screen; the kiosk has no settings to show.
    use_kivy_settings = False

    def open_settings(self, *largs: Any) -> bool:
        """Refused: a citizen must never reach a settings panel (see ``use_kivy_settings``)."""
        log.info("settings panel refused")
        return False

    def __init__(self, terminal: Terminal, stop_event: threading.Event | None = None, *,
                 photo_path: Callable[[Officer], pathlib.Path | None] = lambda o: None,
                 **kw: Any):
        super().__init__(**kw)
        self.terminal = terminal
        self.photo_path = photo_path
        self.stop_event = stop_event or threading.Event()
        self.view: KioskView | None = None
        self.exit_code = 0
        self.last_tick = time.monotonic()

    def build(self) -> KioskView:
        Window.clearcolor = get_color_from_hex(BACKGROUND)
        view = self.view = KioskView(self.terminal, self.photo_path)
        self.terminal.listeners.append(lambda: Clock.schedule_once(view.refresh))
        Window.bind(on_key_down=self._key)
        Clock.schedule_interval(self._tick, TICK_S)
        Clock.schedule_interval(view.rotate_info, self.terminal.settings.info_rotate_s)
        return view

    def _tick(self, _dt: float) -> None:
        self.last_tick = time.monotonic()
        if self.stop_event.is_set():
            self.stop()
            return
        self.terminal.tick()

    def _key(self, _window: Any, key: int, _scancode: int, codepoint: str | None,
             modifiers: list[str]) -> bool:
        # A USB barcode/QR scanner is a keyboard: on the dossier screen its characters make
        # the code and its Enter sends it. (Key events, not text input: SDL2 only sends
        # text events while an on-screen text field has focus.)
        if self.terminal.screen is not Screen.DOSSIER:
            return key == 27  # never let Escape close the kiosk
        if key in (13, 271):
            self.terminal.type_key("enter")
        elif key == 8:
            self.terminal.type_key("back")
        elif key < 256 and codepoint and len(codepoint) == 1 and codepoint.isprintable():
            # (Kivy reports modifier keys such as Shift, 304, with codepoint chr(304).)
            self.terminal.type_key(codepoint.upper() if "shift" in modifiers else codepoint)
        return True

    def responsive(self, within_s: float = 10.0) -> bool:
        """Whether Kivy's main loop has turned lately (a frozen screen stops the watchdog)."""
        return time.monotonic() - self.last_tick < within_s

    def restart(self, exit_code: int = 75) -> None:
        """Leave the main loop with ``exit_code``; systemd's Restart=always starts us again."""
        self.exit_code = exit_code
        self.stop_event.set()

    def screenshot(self, timeout: float = 10.0) -> bytes:
        """A PNG of what citizens see now, rendered on Kivy's thread; callable from any thread."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def grab(_dt: float) -> None:
            try:
                with tempfile.TemporaryDirectory() as folder:
                    path = pathlib.Path(folder) / "screen.png"
                    assert self.view is not None
                    self.view.export_to_png(str(path))
                    box["png"] = path.read_bytes()
            except Exception as exc:
                box["error"] = exc
            finally:
                done.set()

        Clock.schedule_once(grab)
        if not done.wait(timeout):
            raise ScreenshotError(f"no frame to capture within {timeout} s")
        if "error" in box:
            raise ScreenshotError(f"screenshot failed: {box['error']}")
        return box["png"]
