"""The web console over real HTTP: signing in, each role's menu and pages, the language
switch, strangers sent to sign in, live alerts. (tests/test_console_browser.py drives it
in a real browser.)"""

from __future__ import annotations

import re

import pytest
import requests

from conftest import wait_for
from controller.access import users
from controller.access.roles import ADMIN, LEADER, OPERATOR, TECHNICIAN

PASSWORD = "mật-khẩu-đủ-dài-1"
OPERATOR_MENU = ["/", "/audio", "/broadcasts", "/emergency", "/speakers", "/devices"]
LEADER_PAGES = ["/ratings", "/alerts", "/cases", "/reports", "/public-info", "/camera"]
MENUS = {  # what each role sees in the menu (by path)
    ADMIN: [*OPERATOR_MENU[:-1], *LEADER_PAGES, "/roster", "/devices", "/users", "/audit",
            "/tokens"],
    OPERATOR: OPERATOR_MENU,
    LEADER: ["/", *LEADER_PAGES, "/roster"],
    TECHNICIAN: ["/", "/devices"],
}


@pytest.fixture
def people(controller):
    for role in MENUS:
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    return controller


def signed_in(controller, role: str) -> requests.Session:
    http = requests.Session()
    resp = http.post(controller.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": f"nguoi-{role}", "password": PASSWORD, "next": "/"})
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    return http


def menu(html: str) -> list[str]:
    nav = html.split('<nav class="menu"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.parametrize("role", list(MENUS))
def test_each_role_sees_its_menu_and_only_its_pages(people, role):
    http = signed_in(people, role)
    page = http.get(people.api_url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert menu(page.text) == MENUS[role]
    for path in ("/devices", "/users", "/audit"):
        status = http.get(people.api_url + path, timeout=10).status_code
        assert status == (200 if path in MENUS[role] else 403), (role, path)


def test_dashboard_shows_each_role_its_parts_in_vietnamese_first(people):
    leader = signed_in(people, LEADER).get(people.api_url + "/", timeout=10).text
    assert '<html lang="vi">' in leader
    assert "Đánh giá hôm nay" in leader and "Chỉ số hài lòng" in leader
    assert "Bản tin sắp phát" not in leader  # the operator's part
    operator = signed_in(people, OPERATOR).get(people.api_url + "/", timeout=10).text
    assert "Bản tin sắp phát" in operator and "Đánh giá hôm nay" not in operator


def test_language_switch_to_english_and_back(people):
    http = signed_in(people, LEADER)
    resp = http.get(people.api_url + "/lang/en?next=/devices", allow_redirects=False,
                    timeout=10)
    assert resp.status_code == 303 and resp.headers["location"] == "/devices"
    page = http.get(people.api_url + "/", timeout=10).text
    assert '<html lang="en">' in page and "Today's ratings" in page
    http.get(people.api_url + "/lang/vi", timeout=10)
    assert "Đánh giá hôm nay" in http.get(people.api_url + "/", timeout=10).text


def test_a_stranger_is_sent_to_sign_in_and_comes_back(people):
    resp = requests.get(people.api_url + "/audit", allow_redirects=False, timeout=10)
    assert resp.status_code == 303 and resp.headers["location"] == "/signin?next=/audit"
    form = requests.get(people.api_url + resp.headers["location"], timeout=10)
    assert 'name="next" value="/audit"' in form.text
    http = requests.Session()
    back = http.post(people.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": "nguoi-admin", "password": PASSWORD, "next": "/audit"})
    assert back.headers["location"] == "/audit"


def test_wrong_password_shows_the_form_with_the_reason_and_no_cookie(people):
    resp = requests.post(people.api_url + "/signin", timeout=10,
                         data={"name": "nguoi-leader", "password": "sai", "next": "/"})
    assert resp.status_code == 401 and 'role="alert"' in resp.text
    assert "tt_session" not in resp.cookies


def test_sign_in_never_redirects_off_the_controller(people):
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        http = requests.Session()
        resp = http.post(people.api_url + "/signin", allow_redirects=False, timeout=10,
                         data={"name": "nguoi-admin", "password": PASSWORD, "next": target})
        assert resp.headers["location"] == "/", target
        switch = http.get(people.api_url + f"/lang/en?next={target}", allow_redirects=False,
                          timeout=10)
        assert switch.headers["location"] == "/", target


def test_sign_out_needs_the_csrf_token_and_ends_the_session(people):
    http = signed_in(people, OPERATOR)
    page = http.get(people.api_url + "/", timeout=10).text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
    assert http.post(people.api_url + "/signout", timeout=10).status_code == 403
    out = http.post(people.api_url + "/signout", headers={"X-CSRF-Token": csrf}, timeout=10)
    assert out.status_code == 204 and out.headers["HX-Redirect"] == "/signin"
    again = http.get(people.api_url + "/", allow_redirects=False, timeout=10)
    assert again.status_code == 303


def test_pages_load_nothing_from_elsewhere_and_forbid_inline_script(people):
    page = signed_in(people, ADMIN).get(people.api_url + "/", timeout=10)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in (s for s in sources if s.startswith("/static/")):
        assert requests.get(people.api_url + asset, timeout=10).status_code == 200, asset


def test_new_alerts_arrive_live_on_the_leaders_stream(people):
    http = signed_in(people, LEADER)
    with http.get(people.api_url + "/events/alerts", stream=True, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        people.writer.call(lambda db: db.execute(
            "INSERT INTO alerts (desk, ts, window_start, answers, negative, created, kind)"
            " VALUES ('quay-1', '2026-11-26T08:00:00.000Z', '2026-11-26T07:45:00.000Z',"
            " 6, 4, 0, 'negative')"))
        lines = stream.iter_lines(decode_unicode=True)
        event = wait_for(lambda: next(line for line in lines if line.startswith("data:")))
    assert "quay-1" in event and "4/6 lượt không hài lòng" in event


def test_every_console_text_has_a_vietnamese_translation():
    """The catalog covers what the templates and pages mark for translation."""
    import pathlib

    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from controller.web.console import i18n
    root = pathlib.Path(__file__).resolve().parent.parent / "controller/web/console"
    translated = set()
    for po in (i18n.LOCALE_DIR / "vi" / "LC_MESSAGES").glob("*.po"):
        with po.open("rb") as f:
            translated |= {m.id for m in read_po(f, locale="vi") if m.id and m.string}
    marked = {message for _, _, message, _, _ in extract_from_dir(
        root, method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
        keywords={"_": None, "N_": None, "gettext": None})}
    assert len(marked) > 50
    untranslated = sorted(m for m in marked if isinstance(m, str) and m not in translated)
    assert untranslated == []
