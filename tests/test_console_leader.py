"""The leaders' pages over real HTTP and in Debian's Chromium: satisfaction with charts
and drill-down (figures equal the API's), alerts, cases with their apology letter,
reports (the DOCX and XLSX downloaded from the page), public information."""

from __future__ import annotations

import html
import io
import json
import re
import uuid

import pytest
import requests
from console_browser import PASSWORD as BROWSER_PASSWORD
from console_browser import Visit

from controller.access import users
from controller.access.roles import LEADER, OPERATOR, ROLES, TECHNICIAN
from controller.ratings import store
from sim import history
from wire.messages import format_ts, utc_now

PASSWORD = "mật-khẩu-đủ-dài-4"
KIOSK = "kiosk-l1"
PAGES = ["/ratings", "/ratings/list", "/alerts", "/cases", "/reports", "/public-info"]


@pytest.fixture
def people(controller):
    for role in ROLES:
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    return controller


def seeded(controller, per_day: int = 3) -> None:
    """A kiosk's year of ratings through the rating store (cases opened as live), one
    rating flagged as misuse today, and an alert of each kind."""
    controller.registry.add(KIOSK, "kiosk")
    controller.writer.call(lambda db: history.seed(db, [KIOSK], days=330, per_day=per_day))
    now = format_ts(utc_now())
    event = {"id": str(uuid.uuid4()), "device": KIOSK, "seq": 0, "type": "rating", "ts": now,
             "clock_synced": True,
             "data": {"level": 4, "scale": 4, "reasons": [], "misuse": True}}

    def misuse(db):
        db.execute("INSERT INTO events (id, device, seq, type, ts, clock_synced, received,"
                   " data) VALUES (?, ?, 0, 'rating', ?, 1, 0, ?)",
                   (event["id"], KIOSK, now, json.dumps(event["data"])))
        store.store_rating(db, event)
    controller.writer.call(misuse)
    controller.writer.call(lambda db: db.conn.executemany(
        "INSERT INTO alerts (desk, ts, window_start, answers, negative, created, kind)"
        " VALUES ('mot-cua-1', ?, ?, ?, ?, 0, ?)",
        [(now, now, 6, 4, "negative"), (now, now, 40, 0, "pace")]))


def signed_in(controller, role: str, lang: str = "vi") -> requests.Session:
    http = requests.Session()
    resp = http.post(controller.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": f"nguoi-{role}", "password": PASSWORD, "next": "/"})
    assert resp.status_code == 303, resp.text
    http.get(controller.api_url + f"/lang/{lang}", timeout=10)
    page = http.get(controller.api_url + "/", timeout=10).text
    http.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
    return http


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">(?:<a [^>]*>)?([^<]*)<', page)
    assert found, name
    return found.group(1)


def group_rows(page: str, name: str) -> dict[str, list[str]]:
    """A breakdown's table: key -> [count, satisfied, dissatisfied, index] as shown."""
    table = page.split(f'<table data-group="{name}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-key="([^"]*)">(.*?)</tr>', table, flags=re.S)
    return {html.unescape(key): re.findall(r'<td class="num">([^<]*)</td>', cells)
            for key, cells in rows}


def percent(share: float | None, lang: str = "en") -> str:
    """As the console's ``percent`` filter shows a share (Babel, one decimal)."""
    from babel.numbers import format_percent
    return "—" if share is None else format_percent(share, format="#,##0.0%", locale=lang)


@pytest.mark.parametrize("role", [LEADER, OPERATOR, TECHNICIAN])
def test_each_leader_page_answers_leaders_and_refuses_the_others(people, role):
    seeded(people, per_day=1)
    http = signed_in(people, role)
    case = http.get(people.api_url + "/api/v1/cases", timeout=10)
    if role == LEADER:
        case_id = case.json()[0]["id"]
    paths = [*PAGES, f"/cases/{case_id}"] if role == LEADER else [*PAGES, "/cases/1"]
    for path in paths:
        resp = http.get(people.api_url + path, timeout=10)
        assert resp.status_code == (200 if role == LEADER else 403), (role, path, resp.text)
        if role == LEADER:
            assert "script-src 'self'" in resp.headers["content-security-policy"]
            assert ' style="' not in resp.text and "<script>" not in resp.text, path
    menu = http.get(people.api_url + "/", timeout=10).text.split('<nav class="menu"')[1]
    assert ('href="/ratings"' in menu) == (role == LEADER)


@pytest.mark.parametrize("preset", ["month", "6-month", "year"])
def test_satisfaction_figures_equal_the_apis_stats_for_the_same_period(people, preset):
    seeded(people)
    http = signed_in(people, LEADER, lang="en")
    page = http.get(people.api_url + "/ratings", params={"period": preset}, timeout=10).text
    first = re.search(r'name="first" value="([^"]+)"', page).group(1)
    last = re.search(r'name="last" value="([^"]+)"', page).group(1)
    period = http.get(people.api_url + "/api/v1/reports/model", timeout=10,
                      params={"period": preset} if preset != "month" else {
                          "since": first, "until": _day_after(last)}).json()["period"]
    stats = http.get(people.api_url + "/api/v1/ratings/stats", timeout=10,
                     params={"since": period["since_utc"], "until": period["until_utc"]}).json()
    assert stats["count"] > 0
    assert number(figure(page, "count")) == stats["count"]
    assert figure(page, "satisfaction_index") == percent(stats["satisfaction_index"])
    assert number(figure(page, "satisfied")) == stats["satisfied"]
    assert number(figure(page, "dissatisfied")) == stats["dissatisfied"]
    assert number(figure(page, "misuse")) == (1 if preset == "month" else 0)  # today
    for name, rows in stats["by"].items():
        shown = group_rows(page, name)
        assert set(shown) == {"" if r["key"] is None else str(r["key"]) for r in rows}, name
        for r in rows:
            cells = shown["" if r["key"] is None else str(r["key"])]
            assert [number(c) for c in cells[:3]] == [r["count"], r["satisfied"],
                                                      r["dissatisfied"]], (name, r)
            assert cells[3] == percent(r["satisfaction_index"]), (name, r)
    # Each breakdown has an accessible chart: a <title> and the table beside it.
    assert page.count('role="img"') == 6 and page.count("<title id=") == 6


def _day_after(day: str) -> str:
    import datetime as dt
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def test_drill_down_lists_a_groups_ratings_and_misuse_apart(people):
    seeded(people)
    http = signed_in(people, LEADER)
    page = http.get(people.api_url + "/ratings", timeout=10).text  # this month
    link = html.unescape(re.search(r'href="(/ratings/list\?[^"]*by=officer[^"]*)"',
                                   page).group(1))
    officer = re.search(r"key=([^&]+)", link).group(1)
    listed = http.get(people.api_url + link, timeout=10).text
    counted = number(re.search(r'data-count="counted">([^<]+)<', listed).group(1))
    row = next(r for r in http.get(people.api_url + "/api/v1/ratings/stats", timeout=10, params={
        "by": "officer", **_month_bounds(page)}).json()["by"]["officer"]
        if r["key"] == officer)
    assert counted == row["count"] > 0
    assert listed.count("<tbody>") == 1  # this officer had no misuse: one list only
    # The whole period: the misuse rating in its own section, not counted.
    whole = http.get(people.api_url + "/ratings/list", timeout=10).text
    assert number(re.search(r'data-count="misuse">([^<]+)<', whole).group(1)) == 1
    misuse = whole.split('id="misuse"', 1)[1]
    assert KIOSK in misuse and "4/4 · " in misuse


def _month_bounds(page: str) -> dict[str, str]:
    from controller.documents import reports
    first = re.search(r'name="first" value="([^"]+)"', page).group(1)
    last = re.search(r'name="last" value="([^"]+)"', page).group(1)
    period = reports.period_of(first, _day_after(last))
    return {"since": period.since_utc, "until": period.until_utc}


def test_alerts_page_lists_each_kind_with_desk_and_time(people):
    seeded(people, per_day=1)
    page = signed_in(people, LEADER).get(people.api_url + "/alerts", timeout=10).text
    negative = page.split('data-kind="negative"', 1)[1].split("</section>", 1)[0]
    pace = page.split('data-kind="pace"', 1)[1].split("</section>", 1)[0]
    assert "Quầy 1" in negative and "<time" in negative and ">4<" in negative
    assert "Quầy 1" in pace and ">40<" in pace


def test_case_page_updates_status_and_note_through_the_api(people):
    seeded(people, per_day=1)
    http = signed_in(people, LEADER)
    cases = http.get(people.api_url + "/cases", timeout=10).text
    case_id = int(re.search(r'href="/cases/(\d+)"', cases).group(1))
    page = http.get(people.api_url + f"/cases/{case_id}", timeout=10).text
    assert f'hx-put="/api/v1/cases/{case_id}"' in page
    assert f'hx-put="/api/v1/cases/{case_id}/letter"' in page
    assert f'href="/api/v1/cases/{case_id}/letter.docx"' in page
    # What the form sends (json-enc): the API's own body.
    resp = http.put(people.api_url + f"/api/v1/cases/{case_id}", timeout=10,
                    json={"status": "contacted", "note": "Đã gọi điện xin lỗi"})
    assert resp.status_code == 200, resp.text
    page = http.get(people.api_url + f"/cases/{case_id}", timeout=10).text
    assert 'data-field="status">Đã liên hệ<' in page and "Đã gọi điện xin lỗi" in page
    listed = http.get(people.api_url + "/cases?status=contacted", timeout=10).text
    assert f'href="/cases/{case_id}"' in listed
    # A refusal is the API's: an unknown status.
    bad = http.put(people.api_url + f"/api/v1/cases/{case_id}", json={"status": "x"},
                   timeout=10)
    assert bad.status_code in (400, 422)


def test_reports_page_shows_the_periods_figures_and_links_to_the_files(people):
    seeded(people, per_day=1)
    http = signed_in(people, LEADER, lang="en")
    page = http.get(people.api_url + "/reports", params={"period": "9-month"}, timeout=10).text
    api = http.get(people.api_url + "/api/v1/reports/model", params={"period": "9-month"},
                   timeout=10).json()
    summary = page.split('data-table="summary"', 1)[1].split("</table>", 1)[0]
    assert number(re.findall(r'<td class="num">([^<]*)</td>', summary)[0]) == (
        api["ratings"]["count"])
    year = api["period"]["first_day"][:4]
    assert f'href="/api/v1/reports/model.docx?period=9-month&amp;year={year}"' in page
    docx = http.get(people.api_url + f"/api/v1/reports/model.docx?period=9-month&year={year}",
                    timeout=30)
    assert docx.status_code == 200 and docx.content[:2] == b"PK"
    custom = http.get(people.api_url + "/reports", timeout=10,
                      params={"first": "2026-03-01", "last": "2026-03-31"}).text
    assert "since=2026-03-01&amp;until=2026-04-01" in custom
    assert 'hx-put="/api/v1/commune"' in custom


def test_public_information_form_saves_through_the_service(people):
    http = signed_in(people, LEADER)
    resp = http.post(people.api_url + "/public-info", timeout=10, json={
        "contact_name": ["Nguyễn Văn A", "", "Trần Thị B"], "contact_title": ["Chủ tịch", "", ""],
        "contact_phone": ["0251 3861 234", "", "0912.345.678"], "hotline": "1022",
        "notices": "Nhận hồ sơ thứ Bảy\n\n"})
    assert resp.status_code == 204, resp.text
    info = http.get(people.api_url + "/api/v1/public-info", timeout=10).json()
    assert [c["name"] for c in info["contacts"]] == ["Nguyễn Văn A", "Trần Thị B"]
    assert info["hotline"] == "1022" and info["notices"] == ["Nhận hồ sơ thứ Bảy"]
    page = http.get(people.api_url + "/public-info", timeout=10).text
    assert 'value="0912.345.678"' in page
    bad = http.post(people.api_url + "/public-info", timeout=10,
                    json={"contact_name": "X", "contact_title": "", "contact_phone": "abc"})
    assert bad.status_code == 400 and "phone" in bad.json()["error"]


def test_new_texts_are_in_the_leader_catalog():
    from babel.messages.pofile import read_po

    from controller.web.console import i18n
    with (i18n.LOCALE_DIR / "vi" / "LC_MESSAGES" / "leader.po").open("rb") as f:
        catalog = {m.id: m.string for m in read_po(f, locale="vi") if m.id}
    assert catalog["Satisfaction"] and catalog["Apology letter"]


# -- in a real browser ------------------------------------------------------------------

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser_people(controller):
    controller.writer.call(
        lambda db: users.add_user(db, "nguoi-leader", LEADER, BROWSER_PASSWORD))
    return controller


def test_leader_answers_a_case_with_a_letter_and_downloads_the_reports(browser,
                                                                      browser_people):
    import docx
    import openpyxl
    people = browser_people
    seeded(people, per_day=2)
    case_id, code = people.reader().execute(
        "SELECT c.id, r.dossier_code FROM cases c JOIN ratings r ON r.event_id = c.rating_id"
        " WHERE r.dossier_code IS NOT NULL ORDER BY c.id DESC LIMIT 1").fetchone()
    visit = Visit(browser, people.api_url, accept_downloads=True)
    try:
        visit.sign_in("nguoi-leader")
        page = visit.page
        page.click("nav.menu >> text=Theo dõi, xử lý")
        page.wait_for_url(people.api_url + "/cases")
        page.goto(people.api_url + f"/cases/{case_id}")
        assert code in page.inner_text("main")
        remedy = "Xã đã nhắc nhở cán bộ và sẽ hướng dẫn Ông/Bà hoàn tất hồ sơ trong tuần."
        page.fill("#remedy", remedy)
        page.click("#letter-form button[type=submit]")
        page.wait_for_selector("#letter-outcome >> text=Đã lưu.", timeout=10_000)
        with page.expect_download() as got:
            page.click("text=Tải thư xin lỗi (DOCX)")
        letter = docx.Document(got.value.path())
        text = "\n".join(p.text for p in letter.paragraphs) + "\n".join(
            cell.text for table in letter.tables for row in table.rows for cell in row.cells)
        assert code in text and remedy in text
        # Status through the form: the page reloads with it.
        page.select_option("#status", "closed")
        page.fill("#note", "Đã gửi thư xin lỗi")
        page.click("#case-form button[type=submit]")
        page.wait_for_selector("[data-field=status] >> text=Đã xử lý xong", timeout=10_000)
        # The 6-month report: the XLSX's summary equals the page's.
        page.goto(people.api_url + "/reports?period=6-month")
        shown = page.eval_on_selector_all(
            "table[data-table=summary] tbody tr",
            "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
        with page.expect_download() as got:
            page.click("#report-xlsx")
        assert got.value.suggested_filename.endswith(".xlsx")
        book = openpyxl.load_workbook(io.BytesIO(got.value.path().read_bytes()))
        sheet = book["Tổng hợp"]
        for i, (name, value) in enumerate(shown[:4], start=2):
            assert sheet.cell(i, 1).value == name
            cell = sheet.cell(i, 2).value
            if isinstance(cell, float):
                assert value == percent(cell, "vi"), (name, value, cell)
            else:
                assert number(value) == cell, (name, value, cell)
        ratings = page.goto(people.api_url + "/ratings?period=6-month")
        assert ratings is not None and ratings.ok
        assert number(page.inner_text("[data-figure=count]")) == sheet.cell(2, 2).value > 0
    finally:
        visit.close()


def test_leader_pages_have_no_serious_accessibility_violations(browser, browser_people):
    from console_browser import AXE
    seeded(browser_people, per_day=1)
    case_id = browser_people.reader().execute("SELECT min(id) FROM cases").fetchone()[0]
    visit = Visit(browser, browser_people.api_url, bypass_csp=True)
    try:
        visit.sign_in("nguoi-leader")
        for path in [*PAGES[:-1], "/public-info", f"/cases/{case_id}"]:
            visit.page.goto(browser_people.api_url + path)
            visit.page.add_script_tag(path=str(AXE))
            found = visit.page.evaluate("axe.run().then(r => r.violations.map("
                                        "v => [v.id, v.impact, v.nodes.length]))")
            serious = [v for v in found if v[1] in ("serious", "critical")]
            assert serious == [], (path, serious)
    finally:
        visit.close()


def test_satisfaction_page_fits_a_phone(browser, browser_people):
    seeded(browser_people, per_day=1)
    visit = Visit(browser, browser_people.api_url)
    try:
        visit.page.set_viewport_size({"width": 390, "height": 844})
        visit.sign_in("nguoi-leader")
        for path in ("/ratings", "/reports"):
            visit.page.goto(browser_people.api_url + path)
            width = visit.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
    finally:
        visit.close()
