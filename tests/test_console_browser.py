"""The console in a real browser: Debian's Chromium driven by Playwright, against the real
controller. Each test also checks that the page asked nothing of any host but the
controller."""

from __future__ import annotations

import pytest
from console_browser import AXE, PASSWORD, Visit

from controller.access import users
from controller.access.roles import LEADER, OPERATOR

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def people(controller):
    for role in (LEADER, OPERATOR):
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    return controller


def test_leader_signs_in_sees_vietnamese_and_alerts_arrive_live(browser, people):
    visit = Visit(browser, people.api_url)
    try:
        visit.sign_in("nguoi-leader")
        page = visit.page
        menu = page.inner_text("nav.menu")
        assert "Tổng quan" in menu and "Thiết bị" not in menu and "Người dùng" not in menu
        assert "Đánh giá hôm nay" in page.inner_text("main")
        assert page.evaluate("document.fonts.check('16px \"DejaVu Sans\"', 'Đánh giá ấp')")
        page.wait_for_function("document.querySelector('[sse-connect]') && "
                               "window.htmx !== undefined")
        page.wait_for_timeout(500)  # the event stream opened
        people.writer.call(lambda db: db.execute(
            "INSERT INTO alerts (desk, ts, window_start, answers, negative, created, kind)"
            " VALUES ('quay-2', '2026-11-26T08:00:00.000Z', '2026-11-26T07:45:00.000Z',"
            " 5, 3, 0, 'negative')"))
        page.wait_for_selector("li.alert >> text=quay-2", timeout=10_000)
        assert "3/5 lượt không hài lòng" in page.inner_text("ul.alerts")
    finally:
        visit.close()


def test_operator_switches_to_english_and_signs_out(browser, people):
    visit = Visit(browser, people.api_url)
    try:
        visit.sign_in("nguoi-operator")
        page = visit.page
        menu = page.inner_text("nav.menu")
        assert "Tổng quan" in menu and "Thiết bị" in menu and "Người dùng" not in menu
        page.click("text=English")
        page.wait_for_selector("html[lang=en]")
        assert "Next broadcasts" in page.inner_text("main")
        page.click("text=Sign out")
        page.wait_for_url(people.api_url + "/signin")
        page.goto(people.api_url + "/devices")
        assert page.url.startswith(people.api_url + "/signin")
    finally:
        visit.close()


@pytest.mark.parametrize("path", ["/signin", "/", "/devices"])
def test_pages_have_no_serious_accessibility_violations(browser, people, path):
    """axe-core (from npm) in the page: nothing serious or critical."""
    visit = Visit(browser, people.api_url, bypass_csp=True)  # to inject axe itself
    try:
        if path != "/signin":
            visit.sign_in("nguoi-operator")
        visit.page.goto(people.api_url + path)
        visit.page.add_script_tag(path=str(AXE))
        found = visit.page.evaluate("axe.run().then(r => r.violations.map("
                                    "v => [v.id, v.impact, v.nodes.length]))")
        serious = [v for v in found if v[1] in ("serious", "critical")]
        assert serious == [], serious
    finally:
        visit.close()


def test_the_console_fits_a_phone(browser, people):
    visit = Visit(browser, people.api_url)
    try:
        visit.page.set_viewport_size({"width": 390, "height": 844})
        visit.sign_in("nguoi-leader")
        width = visit.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
    finally:
        visit.close()
