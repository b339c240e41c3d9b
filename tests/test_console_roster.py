"""The leaders' roster page: officers with photos, desks with their kiosk, a desk × day
table of the week's shifts and the shift form in local time; and, in Debian's Chromium,
a leader adding an officer with a photo and a shift that reaches a real kiosk's config."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zlib
from zoneinfo import ZoneInfo

import pytest
import requests
from console_browser import PASSWORD as BROWSER_PASSWORD
from console_browser import Visit
from test_console_technician import PASSWORD, people, signed_in  # noqa: F401 (fixture)
from test_kiosk_controller import Api

from conftest import wait_for
from controller.access import users
from controller.access.roles import ADMIN, LEADER, OPERATOR, ROLES, TECHNICIAN
from controller.broadcasts.schedule import TIMEZONE

ZONE = ZoneInfo(TIMEZONE)


def png(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small valid PNG (one colour)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def api(controller) -> Api:
    return Api(controller)


def tomorrow() -> dt.date:
    return dt.datetime.now(ZONE).date() + dt.timedelta(days=1)


# -- over HTTP ----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_the_roster_page_is_for_leaders_and_admins(people, role):  # noqa: F811
    http = signed_in(people, role)
    allowed = role in (ADMIN, LEADER)
    page = http.get(people.api_url + "/roster", timeout=10)
    assert page.status_code == (200 if allowed else 403), role
    if allowed:
        assert page.headers["content-type"].startswith("text/html")
        assert "Cán bộ và lịch trực" in page.text and "script-src 'self'" in page.headers[
            "content-security-policy"]
    shift = http.post(people.api_url + "/roster/shifts", timeout=10,
                      json={"desk": "x", "officer": "y", "day": "2026-01-01",
                            "start": "08:00", "end": "09:00"})
    assert shift.status_code == (400 if allowed else 403), (role, shift.text)


def test_page_shows_officers_with_photos_desks_and_the_weeks_shifts(people, api):  # noqa: F811
    people.registry.add("kiosk-h1", "kiosk")
    api("PUT", "/api/v1/officers/lan", {"name": "Nguyễn Thị Lan", "title": "Công chức tư pháp",
                                        "phone": "0909 123 456"})
    api("PUT", "/api/v1/officers/binh", {"name": "Trần Văn Bình"})
    image = png()
    stored = requests.put(api.url + "/api/v1/officers/lan/photo", data=image, timeout=10,
                          headers={**api.headers, "Content-Type": "image/png"})
    assert stored.status_code == 200, stored.text
    sha = hashlib.sha256(image).hexdigest()
    api("PUT", "/api/v1/desks/quay-1", {"name": "Quầy 1", "kiosk": "kiosk-h1"})
    api("PUT", "/api/v1/desks/quay-2", {"name": "Quầy 2"})
    http = signed_in(people, LEADER)
    day = tomorrow()
    added = http.post(people.api_url + "/roster/shifts", timeout=10,
                      json={"desk": "quay-1", "officer": "lan", "day": day.isoformat(),
                            "start": "07:30", "end": "11:30"})
    assert added.status_code == 201, added.text
    start = dt.datetime.combine(day, dt.time(7, 30), ZONE).astimezone(dt.UTC)
    assert added.json()["start"] == start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    night = http.post(people.api_url + "/roster/shifts", timeout=10,
                      json={"desk": "quay-2", "officer": "binh", "day": day.isoformat(),
                            "start": "22:00", "end": "06:00"})
    assert night.status_code == 201
    assert night.json()["end"] > night.json()["start"]  # across midnight: the next day's
    shifts = api("GET", "/api/v1/roster", desk="quay-1")
    assert [(s["officer"], s["start"]) for s in shifts] == [("lan", added.json()["start"])]

    page = http.get(people.api_url + "/roster", timeout=10).text
    lan = page.split('data-officer="lan"', 1)[1].split("</tr>", 1)[0]
    assert f'src="/api/v1/photos/{sha}"' in lan and "Công chức tư pháp" in lan
    assert "0909 123 456" in lan and 'hx-delete="/api/v1/officers/lan"' in lan
    binh = page.split('data-officer="binh"', 1)[1].split("</tr>", 1)[0]
    assert "Chưa có ảnh" in binh
    assert '<option value="kiosk-h1">' in page  # the kiosks of the registry
    desk = page.split('<table class="desks">', 1)[1].split('data-desk="quay-1"', 1)[1]
    assert "kiosk-h1" in desk.split("</tr>", 1)[0]
    row = page.split('<table class="roster">', 1)[1].split('data-desk="quay-1"', 1)[1].split(
        "</tr>", 1)[0]
    cells = row.split("<td>")[1:]
    assert len(cells) == 7 and "07:30–11:30 Nguyễn Thị Lan" in cells[1]
    assert f'hx-delete="/api/v1/roster/{added.json()["id"]}"' in cells[1]
    assert "22:00–06:00 (+1) Trần Văn Bình" in page
    assert requests.get(people.api_url + f"/api/v1/photos/{sha}", timeout=10).content == image
    later = http.get(people.api_url + "/roster", params={"start": "2999-01-04"},
                     timeout=10).text
    assert "Nguyễn Thị Lan" not in later.split('<table class="roster">', 1)[1].split(
        "</table>", 1)[0]
    bad = http.get(people.api_url + "/roster", params={"start": "mai"}, timeout=10)
    assert bad.status_code == 200 and 'role="alert"' in bad.text


def test_the_shift_form_shows_the_apis_refusals(people, api):  # noqa: F811
    api("PUT", "/api/v1/officers/lan", {"name": "Lan"})
    api("PUT", "/api/v1/desks/quay-1", {"name": "Quầy 1"})
    http = signed_in(people, LEADER)
    day = tomorrow().isoformat()
    for form, words in (
            ({"desk": "quay-9", "officer": "lan", "day": day, "start": "08:00", "end": "09:00"},
             "Không có quầy"),
            ({"desk": "quay-1", "officer": "lan", "day": day, "start": "08:00", "end": "08:00"},
             "trước giờ bắt đầu"),
            ({"desk": "quay-1", "officer": "lan", "day": "mai", "start": "08:00", "end": "9"},
             "YYYY-MM-DD")):
        resp = http.post(people.api_url + "/roster/shifts", json=form, timeout=10)
        assert resp.status_code == 400 and words in resp.json()["error"], (form, resp.text)
    no_csrf = requests.Session()
    no_csrf.cookies = http.cookies
    refused = no_csrf.post(people.api_url + "/roster/shifts", timeout=10,
                           json={"desk": "quay-1", "officer": "lan", "day": day,
                                 "start": "08:00", "end": "09:00"})
    assert refused.status_code == 403
    assert api("GET", "/api/v1/roster") == []


def test_roster_texts_are_in_the_roster_catalog():
    from babel.messages.pofile import read_po

    from controller.web.console import i18n
    with (i18n.LOCALE_DIR / "vi" / "LC_MESSAGES" / "roster.po").open("rb") as f:
        catalog = {m.id: m.string for m in read_po(f, locale="vi") if m.id}
    assert catalog["Officers and roster"] == "Cán bộ và lịch trực" and all(catalog.values())


# -- in a real browser ----------------------------------------------------------------------

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def leader(controller):
    controller.writer.call(lambda db: users.add_user(db, "nguoi-leader", LEADER,
                                                     BROWSER_PASSWORD))
    return controller


def test_leader_adds_an_officer_with_a_photo_and_a_shift_that_reaches_the_kiosk(
        browser, leader, make_node, tmp_path):
    node = make_node("kiosk-r1", controller=leader)
    image = png(8, 8, (20, 120, 200))
    photo = tmp_path / "lan.png"
    photo.write_bytes(image)
    visit = Visit(browser, leader.api_url)
    try:
        visit.sign_in("nguoi-leader")
        page = visit.page
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("nav.menu >> text=Cán bộ và lịch trực")
        page.wait_for_url(leader.api_url + "/roster")
        # An officer with a photo: the id is made from the name.
        page.fill("#officer-name", "Nguyễn Thị Lan")
        page.fill("#officer-title", "Công chức tư pháp - hộ tịch")
        page.fill("#officer-phone", "0909 123 456")
        page.set_input_files("#officer-photo-file", str(photo))
        page.click("#officer-form button[type=submit]")
        page.wait_for_selector("tr[data-officer=nguyen-thi-lan] img.portrait", timeout=10_000)
        assert page.evaluate("document.querySelector('img.portrait').naturalWidth") == 8
        # A desk on the real kiosk.
        page.fill("#desk-name", "Quầy 1 - Tư pháp")
        page.fill("#desk-id", "quay-1")
        page.select_option("#desk-kiosk", "kiosk-r1")
        page.click("#desk-form button[type=submit]")
        page.wait_for_selector("table.desks tr[data-desk=quay-1]", timeout=10_000)
        wait_for(lambda: node.desired.get("desk") == "Quầy 1 - Tư pháp")
        # A shift tomorrow, 07:30 to 11:30 local time.
        page.select_option("#shift-desk", "quay-1")
        page.select_option("#shift-officer", "nguyen-thi-lan")
        page.fill("#shift-day", tomorrow().isoformat())
        page.fill("#shift-start", "07:30")
        page.fill("#shift-end", "11:30")
        page.click("#shift-form button[type=submit]")
        page.wait_for_selector("table.roster li >> text=Nguyễn Thị Lan", timeout=10_000)
        duty = wait_for(lambda: node.desired.get("duty"))
        assert duty[0]["officer"]["name"] == "Nguyễn Thị Lan"
        assert duty[0]["officer"]["title"] == "Công chức tư pháp - hộ tịch"
        assert duty[0]["officer"]["photo_sha256"] == hashlib.sha256(image).hexdigest()
        start = dt.datetime.combine(tomorrow(), dt.time(7, 30), ZONE)
        assert duty[0]["start"] == start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        # A refusal shows the API's reason; then the shift is removed.
        page.fill("#shift-end", "07:30")
        page.click("#shift-form button[type=submit]")
        page.wait_for_selector("#shift-outcome.error", timeout=10_000)
        assert "trước giờ bắt đầu" in page.inner_text("#shift-outcome")
        page.click("table.roster li button.danger")
        page.wait_for_selector("table.roster li", state="detached", timeout=10_000)
        wait_for(lambda: node.desired.get("duty") == [])
    finally:
        visit.close()


def test_roster_page_has_no_serious_accessibility_violations(browser, leader):
    from console_browser import AXE
    Api(leader)("PUT", "/api/v1/officers/lan", {"name": "Lan"})
    Api(leader)("PUT", "/api/v1/desks/quay-1", {"name": "Quầy 1"})
    visit = Visit(browser, leader.api_url, bypass_csp=True)  # to inject axe itself
    try:
        visit.sign_in("nguoi-leader")
        visit.page.goto(leader.api_url + "/roster")
        visit.page.add_script_tag(path=str(AXE))
        found = visit.page.evaluate("axe.run().then(r => r.violations.map("
                                    "v => [v.id, v.impact, v.nodes.length]))")
        assert [v for v in found if v[1] in ("serious", "critical")] == []
    finally:
        visit.close()


def test_operators_and_technicians_do_not_get_the_menu_item(people):  # noqa: F811
    for role in (OPERATOR, TECHNICIAN):
        page = signed_in(people, role).get(people.api_url + "/", timeout=10).text
        assert 'href="/roster"' not in page
