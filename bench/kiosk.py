"""Kiosk benchmarks: tap -> durable, tap -> thank-you frame, memory over many taps.

``run(quick)`` returns ``(name, value, unit, goal, note)`` rows for ``make bench``. The
window figures come from the real Kivy app in a child process under
``xvfb-run`` (``python -m bench.kiosk --window TAPS``), tapped through the
terminal on Kivy's thread: every tap records a rating in a real outbox
(fsync'd), redraws the thank-you screen, then returns to idle.

Goals (issue #3): tap -> thank-you frame p95 <= 50 ms; tap -> durable p95
<= 10 ms; resident memory after 10,000 taps within 10 % of that after 100.
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

Result = tuple[str, float, str]


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


#: The software OpenGL this machine renders with under Xvfb (Mesa's llvmpipe: LLVM's JIT
#: and the swrast driver), which a Pi's V3D GPU replaces.
_SOFTWARE_GL = ("libLLVM", "swrast_dri", "libgallium")


def _software_gl_mb() -> float:
    """Resident memory of the software renderer's own code and data mappings."""
    total, name = 0, ""
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
                name = parts[5] if len(parts) > 5 else ""
            elif line.startswith("Rss:") and any(k in name for k in _SOFTWARE_GL):
                total += int(parts[1])
    return total / 1024


def durable(taps: int = 1000) -> list[Result]:
    """Tap -> the rating fsync'd in the outbox, through the terminal, no window."""
    from kiosk.settings import parse_settings
    from kiosk.terminal import Terminal
    from node_runtime.outbox import Outbox

    with tempfile.TemporaryDirectory() as folder:
        outbox = Outbox(pathlib.Path(folder) / "node.db", "kiosk-bench")
        clock = [0.0]
        terminal = Terminal(outbox.put, "kiosk-bench", parse_settings({}),
                            monotonic=lambda: clock[0])
        samples = []
        for i in range(taps):
            clock[0] += 10.0  # citizens 10 s apart: no misuse, thank-you over
            terminal.tick()
            start = time.perf_counter()
            terminal.press(1 + i % 3)
            samples.append((time.perf_counter() - start) * 1000)
        outbox.close()
    return [("kiosk_tap_to_durable_p95", round(_p95(samples), 3), "ms")]


def window(taps: int = 10_000) -> list[Result]:
    """Run :func:`_window_child` under a throwaway X server and collect its figures."""
    command = ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-m",
               "bench.kiosk", "--window", str(taps)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=3600,
                         cwd=pathlib.Path(__file__).resolve().parent.parent)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return [tuple(r) for r in json.loads(line[7:])]  # type: ignore[misc]
    raise RuntimeError(f"window benchmark failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def bare_kivy() -> Result:
    """Baseline, measured in the same run: RSS of a bare Kivy app (one Vietnamese
    label, same window size, same renderer) two seconds after its first frame. It is
    the floor any Kivy kiosk starts from on this machine."""
    command = ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-m",
               "bench.kiosk", "--bare"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300,
                         cwd=pathlib.Path(__file__).resolve().parent.parent)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return tuple(json.loads(line[7:]))  # type: ignore[return-value]
    raise RuntimeError(f"bare Kivy baseline failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def _bare_child() -> None:
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ["KIVY_NO_ARGS"] = "1"
    from kivy.config import Config
    Config.set("graphics", "width", "800")
    Config.set("graphics", "height", "480")
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.uix.label import Label

    class Bare(App):
        def build(self) -> Label:
            Clock.schedule_once(self.measure, 2.0)
            return Label(text="Xin chào quý khách")

        def measure(self, _dt: float) -> None:
            print("RESULT " + json.dumps(["kivy_bare_rss", round(_rss_mb(), 1), "MB"]),
                  flush=True)
            self.stop()

    Bare().run()


def _window_child(taps: int) -> None:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    from kiosk.cli import prepare_kivy
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    prepare_kivy({"width": 800, "height": 480}, folder / "kivy")
    from kivy.clock import Clock
    from kivy.config import Config
    from kivy.core.window import Window

    from kiosk.app import KioskApp
    from kiosk.flow import Screen
    from kiosk.settings import parse_settings
    from kiosk.terminal import Terminal
    from node_runtime.outbox import Outbox

    Config.set("graphics", "maxfps", "0")
    outbox = Outbox(folder / "node.db", "kiosk-bench")
    clock = [0.0]
    terminal = Terminal(outbox.put, "kiosk-bench", parse_settings({"info": ["Đường dây nóng"]}),
                        monotonic=lambda: clock[0])
    app = KioskApp(terminal)
    app._tick = lambda _dt: None  # type: ignore[method-assign]  # the bench drives time
    state: dict[str, Any] = {"i": 0, "start": None, "samples": [], "rss": {}}

    def flipped(*_: Any) -> None:
        if state["start"] is None or terminal.screen is not Screen.THANKS:
            return
        if app.view is None or app.view._shown is not Screen.THANKS:
            return
        state["samples"].append((time.perf_counter() - state["start"]) * 1000)
        state["start"] = None
        Clock.schedule_once(back_to_idle)

    def back_to_idle(_dt: float) -> None:
        clock[0] += 10.0
        terminal.tick()
        Clock.schedule_once(tap, 0)

    def tap(_dt: float) -> None:
        i = state["i"]
        if i in (100, taps):
            state["rss"][i] = _rss_mb()
            state["gl"] = _software_gl_mb()
        if i == taps:
            app.stop()
            return
        state["i"] = i + 1
        state["start"] = time.perf_counter()
        terminal.press(1 + i % 3)

    Window.bind(on_flip=flipped)
    Clock.schedule_once(tap, 1.0)
    app.run()
    outbox.close()
    rss = state["rss"]
    results: list[Result] = [
        ("kiosk_tap_to_thanks_frame_p95", round(_p95(state["samples"]), 2), "ms"),
        ("kiosk_rss_after_100_taps", round(rss[100], 1), "MB"),
        (f"kiosk_rss_after_{taps}_taps", round(rss[taps], 1), "MB"),
        ("kiosk_rss_growth_100_to_n", round((rss[taps] / rss[100] - 1) * 100, 2), "%"),
        ("kiosk_rss_without_software_gl", round(rss[taps] - state["gl"], 1), "MB"),
    ]
    print("RESULT " + json.dumps(results), flush=True)


def run(quick: bool = False) -> list[tuple[str, float, str, str, str]]:
    """Every kiosk figure for ``make bench``: (name, value, unit, goal, measured as)."""
    taps = 300 if quick else 10_000
    (_, durable_p95, _), = durable(200 if quick else 1000)
    figures = {name: value for name, value, _ in window(taps)}
    _, bare, _ = bare_kivy()
    frame = figures["kiosk_tap_to_thanks_frame_p95"]
    return [
        ("kiosk_tap_to_durable_p95", durable_p95, "ms", "<= 10",
         "terminal.press -> rating fsync'd in the outbox, no window"),
        ("kiosk_tap_to_thanks_frame_p95", frame, "ms", "<= 50",
         "press on Kivy's thread -> first frame flipped with the thank-you (800x480, "
         "llvmpipe under Xvfb)"),
        ("kiosk_rss_after_100_taps", figures["kiosk_rss_after_100_taps"], "MB", "-",
         "baseline: the kiosk app after 100 taps"),
        (f"kiosk_rss_after_{taps}_taps", figures[f"kiosk_rss_after_{taps}_taps"], "MB", "-",
         "the same process later"),
        ("kiosk_rss_growth", figures["kiosk_rss_growth_100_to_n"], "%", "<= 10",
         f"RSS after {taps} taps / after 100, minus 1"),
        ("kivy_bare_rss", bare, "MB", "-",
         "baseline: a bare Kivy app (one label, 800x480) on the same renderer, same run"),
        ("kiosk_rss_over_bare_kivy", round(figures[f"kiosk_rss_after_{taps}_taps"] / bare, 3),
         "x", "-", f"RSS after {taps} taps / the bare Kivy app's"),
        ("kiosk_rss_without_software_gl", figures["kiosk_rss_without_software_gl"], "MB",
         "<= 120", f"RSS after {taps} taps less the resident code and data of Mesa's "
         "llvmpipe (libLLVM, swrast_dri), which renders here and which a Pi's V3D GPU "
         "replaces"),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--window":
        _window_child(int(sys.argv[2]))
    elif sys.argv[1:] == ["--bare"]:
        _bare_child()
    else:
        for row in run(quick="--quick" in sys.argv):
            print(f"BENCH {row[0]} {row[1]} {row[2]}")
