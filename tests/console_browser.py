"""The console's browser tests' shared parts: Debian's Chromium through Playwright (the
``browser`` fixture, registered in conftest) and :class:`Visit`, a page on the controller
that fails the test if it asked anything of another host."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from sim.console_screens import CHROMIUM, FLAGS

AXE = pathlib.Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "mật-khẩu-đủ-dài-2"

__all__ = ["AXE", "CHROMIUM", "FLAGS", "PASSWORD", "Visit", "browser"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make setup` installs Debian's "
                    "chromium package")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


class Visit:
    """A browser page on the controller that records every host it asked."""

    def __init__(self, browser, base: str, **context):
        self.context = browser.new_context(viewport={"width": 1366, "height": 768}, **context)
        self.page = self.context.new_page()
        self.base = base
        self.hosts: set[str] = set()
        self.page.on("request", lambda r: self.hosts.add(urlsplit(r.url).netloc))

    def sign_in(self, name: str, password: str = PASSWORD) -> None:
        self.page.goto(self.base + "/")
        assert self.page.url.startswith(self.base + "/signin")
        self.page.fill("#name", name)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/")

    def close(self) -> None:
        assert self.hosts == {urlsplit(self.base).netloc}, self.hosts
        self.context.close()
