"""The technician's and the admin's console pages: devices and their health, approving,
the device page (charts, commands, config editor), users, API tokens, the audit log;
the config merge patch (RFC 7396) that keeps what the roster pushed; and, in Debian's
Chromium, a technician approving a device and an admin adding a user who then signs in."""

from __future__ import annotations

import html
import json
import re

import pytest
import requests
from console_browser import PASSWORD as BROWSER_PASSWORD
from console_browser import Visit
from test_kiosk_controller import Api, on_duty

from conftest import wait_for
from controller.access import users
from controller.access.roles import ADMIN, OPERATOR, ROLES, TECHNICIAN
from controller.fleet.desired_config import diff, merge

PASSWORD = "mật-khẩu-đủ-dài-3"


@pytest.fixture
def people(controller):
    for role in ROLES:
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    return controller


@pytest.fixture
def api(controller) -> Api:
    return Api(controller)


def signed_in(controller, role: str, password: str = PASSWORD) -> requests.Session:
    http = requests.Session()
    resp = http.post(controller.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": f"nguoi-{role}", "password": password, "next": "/"})
    assert resp.status_code == 303, resp.text
    page = http.get(controller.api_url + "/", timeout=10).text
    http.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
    return http


def a_fleet(controller) -> None:
    """An approved kiosk with telemetry (online), an approved speaker (offline), and a
    pending stranger."""
    registry = controller.registry
    registry.add("kiosk-t1", "kiosk")
    registry.add("speaker-t1", "speaker")
    registry.birth("kiosk-t1", {"role": "kiosk", "sw": "1.4.2", "config_version": 0})
    for i in range(5):
        registry.telemetry("kiosk-t1", {"cpu_temp_c": 40 + i, "disk_free_mb": 900 - i,
                                        "outbox_depth": i % 2})
    registry.birth("stranger-t1", {"role": "kiosk", "sw": "1.4.2"})
    wait_for(lambda: controller.reader().execute(
        "SELECT count(*) FROM telemetry WHERE device = 'kiosk-t1'").fetchone() == (5,)
        and controller.reader().execute(
        "SELECT status FROM devices WHERE id = 'stranger-t1'").fetchone() == ("pending",))


# -- who sees what ---------------------------------------------------------------------

PAGES = {  # path -> roles allowed (admins always)
    "/devices": (OPERATOR, TECHNICIAN),
    "/devices/kiosk-t1": (TECHNICIAN,),
    "/devices/kiosk-t1/live": (TECHNICIAN,),
    "/users": (),
    "/tokens": (),
    "/audit": (),
}


@pytest.mark.parametrize("role", ROLES)
def test_each_page_answers_its_roles_and_refuses_the_others(people, role):
    a_fleet(people)
    http = signed_in(people, role)
    for path, allowed in PAGES.items():
        resp = http.get(people.api_url + path, timeout=10)
        expected = 200 if role == ADMIN or role in allowed else 403
        assert resp.status_code == expected, (role, path)
        if expected == 200:
            assert resp.headers["content-type"].startswith("text/html")


def test_device_list_shows_health_pending_and_offline_and_buttons_only_to_technicians(people):
    a_fleet(people)
    page = signed_in(people, TECHNICIAN).get(people.api_url + "/devices", timeout=10).text
    assert "Chờ phê duyệt" in page and "stranger-t1" in page
    assert 'hx-post="/api/v1/devices/stranger-t1/approve"' in page
    assert 'hx-post="/api/v1/devices/kiosk-t1/revoke"' in page and "hx-confirm" in page
    kiosk = page.split('data-device="kiosk-t1"', 1)[1].split("</tr>", 1)[0]
    assert "44" in kiosk and "896" in kiosk and "1.4.2" in kiosk and "trực tuyến" in kiosk
    speaker = page.split('data-device="speaker-t1"', 1)[1].split("</tr>", 1)[0]
    assert 'class="offline"' in page.split('data-device="speaker-t1"', 1)[1][:30]
    assert "mất kết nối" in speaker
    operator = signed_in(people, OPERATOR).get(people.api_url + "/devices", timeout=10).text
    assert "kiosk-t1" in operator and "hx-post" not in operator.split("<main>", 1)[1]


def test_device_page_draws_telemetry_charts_and_offers_the_roles_commands(people):
    a_fleet(people)
    http = signed_in(people, TECHNICIAN)
    page = http.get(people.api_url + "/devices/kiosk-t1", timeout=10).text
    assert page.count("<polyline") == 3  # CPU temperature, disk free, outbox depth
    assert "Nhiệt độ CPU" in page and "/api/v1/devices/kiosk-t1/screenshot" in page
    assert '"name": "restart"' in page and '"desk"' not in page  # no roster yet
    speaker = http.get(people.api_url + "/devices/speaker-t1", timeout=10).text
    assert '"name": "test_tone"' in speaker and "screenshot" not in speaker.split("<main>")[1]
    assert "Chưa có số liệu." in speaker
    assert http.get(people.api_url + "/devices/nothing-here", timeout=10).status_code == 404


def test_commands_sent_are_listed_with_their_status(people):
    a_fleet(people)
    http = signed_in(people, TECHNICIAN)
    sent = http.post(people.api_url + "/api/v1/devices/kiosk-t1/commands",
                     json={"name": "ping"}, timeout=10)
    assert sent.status_code == 201, sent.text
    live = http.get(people.api_url + "/devices/kiosk-t1/live", timeout=10).text
    row = live.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "Kiểm tra kết nối" in row and ("đã gửi" in row or "chờ duyệt" in row)


# -- the config: a merge patch -----------------------------------------------------------

def test_merge_follows_rfc_7396():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "keep": [1, 2]}
    assert merge(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"},
                                                            "keep": [1, 2]}
    assert merge({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge({"a": "b"}, {"a": None, "n": {"x": None}}) == {"n": {}}
    assert merge({"a": "b"}, {}) == {"a": "b"}
    assert target["c"] == {"d": "e", "f": "g"}  # not changed in place
    before = {"desk": "Quầy 1", "volume": 3, "idle": {"text": "a", "lang": "vi"}}
    after = {"desk": "Quầy 1", "volume": 4, "idle": {"text": "a"}, "new": True}
    patch = diff(before, after)
    assert patch == {"volume": 4, "idle": {"lang": None}, "new": True}
    assert merge(before, patch) == after


def test_patch_changes_one_field_and_keeps_the_rosters_desk_and_officer(
        controller, make_node, api):
    node = make_node("kiosk-p1", controller=controller)
    on_duty(api, "kiosk-p1", "lan", desk="quay-p1")
    wait_for(lambda: node.desired.get("desk") == "quay-p1")
    pushed = api("GET", "/api/v1/devices/kiosk-p1/config")["config"]
    assert pushed["duty"][0]["officer"]["name"] == "Lan"
    got = api("PATCH", "/api/v1/devices/kiosk-p1/config",
              {"config": {"idle_text": "Xin chào", "office_hours": {"open": "07:30"}}})
    assert got["config"]["desk"] == "quay-p1" and got["config"]["duty"] == pushed["duty"]
    assert got["config"]["idle_text"] == "Xin chào"
    wait_for(lambda: node.desired.get("idle_text") == "Xin chào")
    assert node.desired["desk"] == "quay-p1" and node.desired["duty"] == pushed["duty"]
    removed = api("PATCH", "/api/v1/devices/kiosk-p1/config", {"config": {"idle_text": None}})
    assert "idle_text" not in removed["config"] and removed["version"] == got["version"] + 1
    assert removed["config"]["office_hours"] == {"open": "07:30"}
    bad = requests.patch(api.url + "/api/v1/devices/kiosk-p1/config", headers=api.headers,
                         json={"config": "not an object"}, timeout=10)
    assert bad.status_code in (400, 422) and bad.json()["error"]
    missing = requests.patch(api.url + "/api/v1/devices/nothing/config", headers=api.headers,
                             json={"config": {"a": 1}}, timeout=10)
    assert missing.status_code == 404


def test_config_editor_sends_only_the_fields_edited(people, make_node, api):
    node = make_node("kiosk-e1", controller=people)
    on_duty(api, "kiosk-e1", "lan", desk="quay-e1")
    wait_for(lambda: node.desired.get("desk") == "quay-e1")
    http = signed_in(people, TECHNICIAN)
    page = http.get(people.api_url + "/devices/kiosk-e1", timeout=10).text
    assert "quay-e1" in page.split("<textarea", 1)[1]
    shown = html.unescape(re.search(r'name="original" value="([^"]*)"', page).group(1))
    # Meanwhile the roster puts another officer on duty at the desk.
    on_duty(api, "kiosk-e1", "binh", desk="quay-e1")
    edited = {**json.loads(shown), "idle_text": "Chào mừng"}
    saved = http.post(people.api_url + "/devices/kiosk-e1/config", timeout=10,
                      json={"original": shown, "config": json.dumps(edited)})
    assert saved.status_code == 200 and "Đã lưu" in saved.text and "idle_text" in saved.text
    now = api("GET", "/api/v1/devices/kiosk-e1/config")["config"]
    assert now["idle_text"] == "Chào mừng"
    assert [d["officer"]["name"] for d in now["duty"]][-1] == "Binh"  # the roster's, kept
    unchanged = http.post(people.api_url + "/devices/kiosk-e1/config", timeout=10,
                          json={"original": shown, "config": shown})
    assert "Không có gì thay đổi" in unchanged.text
    broken = http.post(people.api_url + "/devices/kiosk-e1/config", timeout=10,
                       json={"original": shown, "config": "{oops"})
    assert broken.status_code == 200 and 'role="alert"' in broken.text
    assert "JSON" in broken.text


# -- the admin: users and tokens ------------------------------------------------------------

def test_admin_adds_a_user_changes_their_role_and_they_sign_in(people):
    admin = signed_in(people, ADMIN)
    made = admin.post(people.api_url + "/api/v1/users", timeout=10,
                      json={"name": "tho-dien", "role": "technician",
                            "password": "mot-mat-khau-dai"})
    assert made.status_code == 201 and made.json()["role"] == "technician"
    again = admin.post(people.api_url + "/api/v1/users", timeout=10,
                       json={"name": "tho-dien", "role": "leader", "password": "x" * 12})
    assert again.status_code in (400, 409, 422) and "đã có" in again.json()["error"]
    short = admin.post(people.api_url + "/api/v1/users", timeout=10,
                       json={"name": "ngan", "role": "leader", "password": "short"})
    assert short.status_code in (400, 422) and "Mật khẩu" in short.json()["error"]
    changed = admin.put(people.api_url + "/api/v1/users/tho-dien", timeout=10,
                        json={"role": "operator", "password": ""})
    assert changed.status_code == 200 and changed.json()["role"] == "operator"
    assert admin.put(people.api_url + "/api/v1/users/nobody", json={"role": "leader"},
                     timeout=10).status_code == 404
    http = requests.Session()
    resp = http.post(people.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": "tho-dien", "password": "mot-mat-khau-dai", "next": "/"})
    assert resp.status_code == 303
    assert http.get(people.api_url + "/devices", timeout=10).status_code == 200  # operator
    page = admin.get(people.api_url + "/users", timeout=10).text
    assert "tho-dien" in page and 'hx-put="/api/v1/users/tho-dien"' in page


def test_admin_creates_lists_and_revokes_an_api_token(people):
    admin = signed_in(people, ADMIN)
    made = admin.post(people.api_url + "/api/v1/tokens", timeout=10,
                      json={"name": "bao-cao", "role": "leader"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["role"] == "leader" and token.startswith("tt_")
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(people.api_url + "/api/v1/ratings", headers=bearer,
                        timeout=10).status_code == 200
    listed = admin.get(people.api_url + "/api/v1/tokens", timeout=10).json()
    assert [(t["name"], t["user"], t["role"]) for t in listed] == [
        ("bao-cao", "bao-cao", "leader")]
    assert "token" not in listed[0]
    page = admin.get(people.api_url + "/tokens", timeout=10).text
    assert "bao-cao" in page and token not in page
    gone = admin.delete(people.api_url + "/api/v1/tokens/bao-cao", timeout=10)
    assert gone.status_code == 200
    assert requests.get(people.api_url + "/api/v1/ratings", headers=bearer,
                        timeout=10).status_code == 401
    assert admin.delete(people.api_url + "/api/v1/tokens/bao-cao",
                        timeout=10).status_code == 404


def test_audit_page_filters_by_user_day_and_method(people):
    admin = signed_in(people, ADMIN)
    admin.post(people.api_url + "/api/v1/tokens", json={"name": "loc"}, timeout=10)
    admin.delete(people.api_url + "/api/v1/tokens/loc", timeout=10)
    wait_for(lambda: any(e["method"] == "DELETE" for e in admin.get(
        people.api_url + "/api/v1/audit", timeout=10).json()))
    page = admin.get(people.api_url + "/audit", timeout=10,
                     params={"user": "nguoi-admin", "method": "DELETE",
                             "since": "2020-01-01"}).text
    rows = page.split("<tbody>", 1)[1]
    assert "DELETE /api/v1/tokens/loc" in rows and "POST /api/v1/tokens" not in rows
    later = admin.get(people.api_url + "/audit", params={"since": "2999-01-01"},
                      timeout=10).text
    assert "/api/v1/tokens" not in later.split("<tbody>", 1)[1]
    bad = admin.get(people.api_url + "/audit", params={"since": "hôm qua"}, timeout=10)
    assert bad.status_code == 200 and 'role="alert"' in bad.text


def test_new_texts_are_in_the_technician_catalog():
    from babel.messages.pofile import read_po

    from controller.web.console import i18n
    with (i18n.LOCALE_DIR / "vi" / "LC_MESSAGES" / "technician.po").open("rb") as f:
        catalog = {m.id: m.string for m in read_po(f, locale="vi") if m.id}
    assert catalog["Approve"] == "Phê duyệt" and all(catalog.values())


# -- in a real browser ----------------------------------------------------------------------

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser_people(controller):
    for role in (TECHNICIAN, ADMIN):
        controller.writer.call(
            lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, BROWSER_PASSWORD))
    return controller


def test_technician_approves_a_pending_device_in_the_browser(browser, browser_people):
    a_fleet(browser_people)
    visit = Visit(browser, browser_people.api_url)
    try:
        visit.sign_in("nguoi-technician")
        page = visit.page
        page.goto(browser_people.api_url + "/devices")
        assert "stranger-t1" in page.inner_text("section.pending")
        page.click("tr[data-device=stranger-t1] >> text=Phê duyệt")
        page.wait_for_selector("table.devices tr[data-device=stranger-t1]", timeout=10_000)
        assert page.query_selector("section.pending") is None
        assert browser_people.reader().execute(
            "SELECT status FROM devices WHERE id = 'stranger-t1'").fetchone() == ("approved",)
        # The device page: its charts, and a command whose row appears below.
        page.goto(browser_people.api_url + "/devices/kiosk-t1")
        assert len(page.query_selector_all("svg polyline")) == 3
        page.click("button >> text=Kiểm tra kết nối")
        page.wait_for_selector("#command-outcome >> text=Đã gửi.", timeout=10_000)
        page.wait_for_selector("table.commands >> text=Kiểm tra kết nối", timeout=10_000)
    finally:
        visit.close()


def test_admin_adds_a_user_in_the_browser_who_then_signs_in(browser, browser_people):
    visit = Visit(browser, browser_people.api_url)
    try:
        visit.sign_in("nguoi-admin")
        page = visit.page
        page.goto(browser_people.api_url + "/users")
        page.fill("#add-user input[name=name]", "ky-thuat-2")
        page.select_option("#add-user select[name=role]", "technician")
        page.fill("#add-user input[name=password]", BROWSER_PASSWORD)
        page.click("#add-user button[type=submit]")
        page.wait_for_selector("tr[data-user=ky-thuat-2]", timeout=10_000)
        # A refusal shows the API's reason.
        page.fill("#add-user input[name=name]", "ky-thuat-2")
        page.fill("#add-user input[name=password]", BROWSER_PASSWORD)
        page.click("#add-user button[type=submit]")
        page.wait_for_selector("#users-outcome.error", timeout=10_000)
        assert "đã có" in page.inner_text("#users-outcome")
        page.click("text=Đăng xuất")
        page.wait_for_url(browser_people.api_url + "/signin")
    finally:
        visit.close()
    newcomer = Visit(browser, browser_people.api_url)
    try:
        newcomer.sign_in("ky-thuat-2")
        assert "Thiết bị" in newcomer.page.inner_text("nav.menu")
        assert "Người dùng" not in newcomer.page.inner_text("nav.menu")
    finally:
        newcomer.close()
