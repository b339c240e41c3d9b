"""``make screenshots`` (the console's part): a PNG of every console page, as the demo's
admin sees it, into ``docs/console/``.

Starts the demo (nine months of seeded history, simulated kiosks and
speakers) in a temporary folder, signs in with Debian's Chromium through
Playwright and saves each page of the menu at 1366×768 (the office laptop) in
Vietnamese, the dashboard in English too, and the dashboard on a 390×844 phone.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence

from sim.demo import CONSOLE_ADMIN, Demo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.strip("/")) or "dashboard"


def capture(out: pathlib.Path, settle_s: float = 8.0) -> list[pathlib.Path]:
    from playwright.sync_api import sync_playwright
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="thanthien-screens-") as folder:
        demo = Demo(pathlib.Path(folder), kiosks=2, speakers=2, bulletin_in=5.0)
        demo.start()
        try:
            time.sleep(settle_s)  # devices online, a few live ratings
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                for lang in ("vi", "en"):
                    context = browser.new_context(viewport={"width": 1366, "height": 768},
                                                  ignore_https_errors=True, locale=lang)
                    page = context.new_page()
                    page.goto(demo.api_url + f"/lang/{lang}?next=/signin")
                    page.fill("#name", CONSOLE_ADMIN)
                    page.fill("#password", demo.password)
                    page.click("button[type=submit]")
                    page.wait_for_url(demo.api_url + "/")
                    paths = page.eval_on_selector_all(
                        "nav.menu a", "links => links.map(a => a.getAttribute('href'))")
                    for path in paths if lang == "vi" else ["/"]:
                        page.goto(demo.api_url + path)
                        page.wait_for_load_state("networkidle")
                        target = out / f"{_name(path)}.{lang}.png"
                        page.screenshot(path=str(target), full_page=True)
                        written.append(target)
                    if lang == "vi":
                        page.set_viewport_size({"width": 390, "height": 844})
                        page.goto(demo.api_url + "/")
                        target = out / "dashboard.phone.vi.png"
                        page.screenshot(path=str(target), full_page=True)
                        written.append(target)
                    context.close()
                browser.close()
        finally:
            demo.stop()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.console_screens")
    parser.add_argument("--out", default="docs/console", help="folder for the PNGs")
    args = parser.parse_args(argv)
    for path in capture(pathlib.Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
