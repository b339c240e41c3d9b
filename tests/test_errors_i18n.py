"""Refusals in the reader's language: the API answers a console session in the page's
language (Vietnamese unless switched), an API client that asks for Vietnamese in
Vietnamese, and every other client in English exactly as before; the catalog has every
marked message; and in Debian's Chromium an operator reads why a broadcast was refused
in Vietnamese."""

from __future__ import annotations

import datetime as dt
import html
import json
import pathlib
import re
import string
from zoneinfo import ZoneInfo

import pytest
import requests
from speaker_support import noise_wav

from controller.access import users
from controller.access.roles import ADMIN, LEADER, OPERATOR
from controller.access.tokens import create_token
from controller.broadcasts.schedule import TIMEZONE
from controller.errors import InvalidRequest, _t, message_of
from controller.web.console import i18n
from controller.web.errors import language, say

PASSWORD = "mật-khẩu-đủ-dài-5"
TZ = ZoneInfo(TIMEZONE)
ROOT = pathlib.Path(__file__).resolve().parent.parent
ERRORS_PO = i18n.LOCALE_DIR / "vi" / "LC_MESSAGES" / "errors.po"


@pytest.fixture
def people(controller):
    """A leader, an operator and an admin; three speakers; quiet hours from one hour from
    now to three hours from now, so a broadcast in two hours falls in them."""
    for role in (LEADER, OPERATOR, ADMIN):
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    now = dt.datetime.now(TZ).replace(second=0, microsecond=0)
    controller.broadcasts.quiet_hours = ((now + dt.timedelta(hours=1)).time(),
                                         (now + dt.timedelta(hours=3)).time())
    for device, hamlet in (("loa-a1", "Ấp Một"), ("loa-b1", "Ấp Hai")):
        controller.registry.add(device, "speaker", hamlet=hamlet)
    return controller


def signed_in(controller, role: str) -> requests.Session:
    """A browser's session: its cookie and the CSRF token the page gives."""
    http = requests.Session()
    resp = http.post(controller.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": f"nguoi-{role}", "password": PASSWORD, "next": "/"})
    assert resp.status_code == 303, resp.text
    page = http.get(controller.api_url + "/", timeout=10).text
    http.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
    return http


def bearer(controller, role: str = ADMIN, **headers: str) -> requests.Session:
    """An API client with a token, as the CLI and scripts are."""
    token = controller.writer.call(lambda db: create_token(db, f"tool-{role}", role))
    http = requests.Session()
    http.headers.update({"Authorization": f"Bearer {token}", **headers})
    return http


def in_quiet_hours(controller) -> str:
    """A local start time (minutes) in the middle of the quiet hours."""
    begin = controller.broadcasts.quiet_hours[0]
    day = dt.datetime.now(TZ).date()
    start = dt.datetime.combine(day, begin) + dt.timedelta(hours=1)
    if start.replace(tzinfo=TZ) < dt.datetime.now(TZ):
        start += dt.timedelta(days=1)
    return start.isoformat(timespec="minutes")


def upload(http: requests.Session, controller) -> int:
    resp = http.post(controller.api_url + "/api/v1/audio", timeout=30,
                     files={"file": ("ban-tin.wav", noise_wav(2.0))},
                     data={"title": "Bản tin sáng"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def bad_shift(controller, http: requests.Session) -> requests.Response:
    for path, body in (("/api/v1/officers/lan", {"name": "Lan"}),
                       ("/api/v1/desks/quay-1", {"name": "Quầy 1"})):
        assert http.put(controller.api_url + path, json=body, timeout=10).ok
    return http.post(controller.api_url + "/api/v1/roster", timeout=10, json={
        "desk": "quay-1", "officer": "lan", "start": "2026-12-01T09:00:00Z",
        "end": "2026-12-01T08:00:00Z"})


# -- over HTTP ----------------------------------------------------------------------------

def test_a_leader_reads_a_bad_shift_refused_in_vietnamese(people):
    resp = bad_shift(people, signed_in(people, LEADER))
    assert resp.status_code == 400 and resp.headers["content-language"] == "vi"
    assert resp.json() == {
        "error": "Giờ kết thúc ca (2026-12-01T08:00:00.000Z) trước giờ bắt đầu "
                 "(2026-12-01T09:00:00.000Z)",
        "error_en": "shift ends (2026-12-01T08:00:00.000Z) before it starts "
                    "(2026-12-01T09:00:00.000Z)"}


def test_the_roster_pages_shift_form_is_refused_in_vietnamese(people):
    http = signed_in(people, LEADER)
    bad_shift(people, http)
    day = (dt.datetime.now(TZ).date() + dt.timedelta(days=1)).isoformat()
    for form, words in (
            ({"desk": "quay-9", "officer": "lan", "day": day, "start": "08:00", "end": "09:00"},
             "Không có quầy 'quay-9'"),
            ({"desk": "quay-1", "officer": "lan", "day": "mai", "start": "08:00", "end": "9"},
             "Cần ngày (YYYY-MM-DD)")):
        resp = http.post(people.api_url + "/roster/shifts", json=form, timeout=10)
        assert resp.status_code == 400 and resp.json()["error"].startswith(words), resp.text


def test_an_operator_reads_a_quiet_hour_conflict_and_a_bad_recurrence_in_vietnamese(people):
    http = signed_in(people, OPERATOR)
    body = {"audio_id": upload(http, people), "start": in_quiet_hours(people)}
    begin, end = (t.strftime("%H:%M") for t in people.broadcasts.quiet_hours)
    resp = http.post(people.api_url + "/api/v1/broadcasts", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    assert re.fullmatch(rf"Lần phát lúc [-0-9]+ [0-9:]+ \(giờ địa phương\) rơi vào giờ yên "
                        rf"tĩnh \({begin}–{end}\); trong giờ này chỉ được phát tin khẩn cấp",
                        resp.json()["error"]), resp.text
    assert "falls in quiet hours" in resp.json()["error_en"]
    check = http.post(people.api_url + "/api/v1/broadcasts/check", json=body, timeout=10)
    assert check.status_code == 200 and not check.json()["ok"]
    assert check.json()["problems"] == [resp.json()["error"]]
    rule = http.post(people.api_url + "/api/v1/broadcasts", timeout=10,
                     json={**body, "start": "2026-12-01T06:30", "rrule": "FREQ=HOURLY"})
    assert rule.status_code == 400 and rule.json()["error"] == (
        "Quy tắc lặp FREQ=HOURLY không hợp lệ: phải là một trong DAILY, WEEKLY, MONTHLY, YEARLY")


def test_an_admin_reads_a_too_short_password_in_vietnamese_then_in_english(people):
    http = signed_in(people, ADMIN)
    url = people.api_url + "/api/v1/users"
    body = {"name": "lan", "role": LEADER, "password": "ngắn"}
    resp = http.post(url, json=body, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"] == "Mật khẩu chỉ có 4 ký tự: cần ít nhất 10 ký tự"
    http.get(people.api_url + "/lang/en", timeout=10)
    english = http.post(url, json=body, timeout=10)
    assert english.status_code == 400 and "content-language" not in english.headers
    assert english.json() == {"error": "password of 4 characters: at least 10 needed"}


def test_a_token_client_gets_english_exactly_as_before(people):
    http = bearer(people)
    resp = http.post(people.api_url + "/api/v1/users", timeout=10,
                     json={"name": "lan", "role": LEADER, "password": "ngắn"})
    assert resp.status_code == 400 and "content-language" not in resp.headers
    assert resp.json() == {"error": "password of 4 characters: at least 10 needed"}
    shift = bad_shift(people, http)
    assert shift.json() == {"error": "shift ends (2026-12-01T08:00:00.000Z) before it starts "
                                     "(2026-12-01T09:00:00.000Z)"}
    invalid = http.post(people.api_url + "/api/v1/broadcasts", json={"audio_id": "x"},
                        timeout=10)
    assert invalid.json() == {"error": "audio_id 'x': expected an integer; start: required"}


@pytest.mark.parametrize(("accept", "vietnamese"), [
    ("vi", True), ("vi-VN,vi;q=0.9,en;q=0.8", True), ("en-US,en;q=0.9,vi;q=0.5", False),
    ("fr", False), ("en;q=0.3, vi;q=0.7", True)])
def test_a_token_client_asking_for_vietnamese_gets_vietnamese(people, accept, vietnamese):
    http = bearer(people, **{"Accept-Language": accept})
    resp = http.post(people.api_url + "/api/v1/users", timeout=10,
                     json={"name": "lan", "role": LEADER, "password": "ngắn"})
    expected = ("Mật khẩu chỉ có 4 ký tự: cần ít nhất 10 ký tự" if vietnamese
                else "password of 4 characters: at least 10 needed")
    assert resp.json()["error"] == expected and ("error_en" in resp.json()) == vietnamese


def test_validation_errors_are_translated_field_names_kept(people):
    http = signed_in(people, OPERATOR)
    resp = http.post(people.api_url + "/api/v1/broadcasts", json={"audio_id": "x"}, timeout=10)
    assert resp.status_code == 400
    assert resp.json() == {"error": "audio_id 'x': cần một số nguyên; start: bắt buộc phải có",
                           "error_en": "audio_id 'x': expected an integer; start: required"}
    query = http.get(people.api_url + "/api/v1/broadcasts?include_cancelled=maybe", timeout=10)
    assert query.json()["error"] == ("tham số truy vấn include_cancelled 'maybe': cần true"
                                     " hoặc false")


def test_the_gates_refusals_are_in_the_sessions_language(people):
    operator = signed_in(people, OPERATOR)
    forbidden = operator.get(people.api_url + "/api/v1/users", timeout=10)
    assert forbidden.status_code == 403 and forbidden.json()["error"] == (
        "nguoi-operator (operator) không có quyền làm việc này: cần vai trò admin")
    roster = operator.post(people.api_url + "/api/v1/roster", json={}, timeout=10)
    assert roster.json()["error"].endswith("cần vai trò leader hoặc admin")
    no_csrf = requests.Session()
    no_csrf.cookies = operator.cookies
    refused = no_csrf.post(people.api_url + "/api/v1/broadcasts", json={}, timeout=10)
    assert refused.status_code == 403 and refused.json() == {
        "error": "Thiếu hoặc sai mã X-CSRF-Token của phiên làm việc này",
        "error_en": "missing or wrong X-CSRF-Token for this session"}
    token = bearer(people, OPERATOR).get(people.api_url + "/api/v1/users", timeout=10)
    assert token.json() == {"error": "tool-operator (operator) may not do this: it needs admin"}


def test_sign_in_refusal_is_in_the_pages_language(people):
    resp = requests.post(people.api_url + "/signin", timeout=10,
                         data={"name": "nguoi-leader", "password": "sai", "next": "/"})
    assert resp.status_code == 401 and "Sai tên người dùng hoặc mật khẩu" in resp.text
    english = requests.post(people.api_url + "/signin", timeout=10, cookies={"tt_lang": "en"},
                            data={"name": "nguoi-leader", "password": "sai", "next": "/"})
    assert "wrong user name or password" in english.text


def test_an_unconverted_message_stays_english_without_error_en(people):
    """The console then puts a lead in the page's language before it (errors.js)."""
    http = signed_in(people, OPERATOR)
    resp = http.get(people.api_url + "/api/v1/nothing-here", timeout=10)
    assert resp.status_code == 404 and resp.json() == {
        "error": "no such endpoint /api/v1/nothing-here"}
    page = http.get(people.api_url + "/broadcasts", timeout=10).text
    leads = json.loads(html.unescape(re.search(r"data-errors='([^']+)'", page).group(1)))
    assert leads == {"0": "Lỗi mạng: không kết nối được máy chủ",
                     "400": "Yêu cầu không hợp lệ",
                     "401": "Bạn chưa đăng nhập hoặc phiên đã hết hạn",
                     "403": "Bạn không có quyền làm việc này", "404": "Không tìm thấy",
                     "413": "Dữ liệu quá lớn", "503": "Máy chủ đang bận, vui lòng thử lại sau",
                     "other": "Yêu cầu không thực hiện được"}
    assert page.index("/static/console/errors.js") < page.index("/static/console/operator.js")


# -- the language chosen, the catalog -------------------------------------------------------

@pytest.mark.parametrize(("cookie", "accept", "chosen"), [
    (None, None, "en"), ("tt_session=abc", None, "vi"), ("tt_session=abc; tt_lang=en", "vi", "en"),
    ("tt_lang=vi", None, "vi"), (None, "vi", "vi"), (None, "en-GB,vi;q=0.8", "en"),
    ("tt_lang=fr", "vi;q=0", "en"), (None, "vi;q=abc, en;q=0.1", "en")])
def test_language_is_the_consoles_choice_else_accept_language_else_english(
        cookie, accept, chosen):
    assert language(cookie, accept) == chosen


def test_a_translation_that_names_a_missing_field_falls_back_to_english():
    exc = InvalidRequest(_t("shift ends ({end}) before it starts ({start})"), end="9", start="8")
    assert str(exc) == "shift ends (9) before it starts (8)"
    assert message_of(exc).localize(lambda t: "Ca {nope}") == str(exc)
    assert say(message_of(exc), "vi") == "Giờ kết thúc ca (9) trước giờ bắt đầu (8)"
    assert say("a plain message", "vi") == "a plain message"


def _fields(template: str) -> list[str]:
    """The replacement fields of a ``str.format`` template, as written (``{value!r}``)."""
    return sorted(f"{{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}"
                  for _, name, spec, conv in string.Formatter().parse(template)
                  if name is not None)


def test_every_marked_error_has_a_vietnamese_translation_with_the_same_fields():
    """errors.po translates every message marked _t() in controller/, keeping each of
    its fields (name, conversion and format) and nothing else."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    with ERRORS_PO.open("rb") as f:
        catalog = {m.id: m.string for m in read_po(f, locale="vi") if m.id}
    marked = {message for _, _, message, _, _ in extract_from_dir(
        ROOT / "controller", method_map=[("**.py", "python")], keywords={"_t": None})}
    assert len(marked) > 150
    assert sorted(m for m in marked if not catalog.get(m)) == []
    assert sorted(m for m, s in catalog.items() if not s) == []
    assert sorted(m for m in catalog if m not in marked) == []  # none left over
    for msgid, msgstr in catalog.items():
        assert _fields(msgstr) == _fields(msgid), (msgid, msgstr)
        assert msgstr.format(**{name: 1.5 if spec else "x" for _, name, spec, _ in
                                string.Formatter().parse(msgid) if name})


# -- in a real browser --------------------------------------------------------------------

def test_operator_reads_why_a_broadcast_in_quiet_hours_was_refused_in_vietnamese(
        browser, people):
    from console_browser import Visit

    http = signed_in(people, OPERATOR)
    upload(http, people)
    visit = Visit(browser, people.api_url)
    try:
        visit.sign_in("nguoi-operator", PASSWORD)
        page = visit.page
        page.goto(people.api_url + "/broadcasts")
        page.fill("#b-start", in_quiet_hours(people))
        page.click("form.schedule button[type=submit]")
        out = page.wait_for_selector("output.result.error")
        text = out.inner_text()
        assert text.startswith("Bị từ chối: Lần phát lúc "), text
        assert "rơi vào giờ yên tĩnh" in text and "quiet hours" not in text
        page.click("text=English")
        page.wait_for_selector("html[lang=en]")
        page.fill("#b-start", in_quiet_hours(people))
        page.click("form.schedule button[type=submit]")
        page.wait_for_selector("output.result.error >> text=falls in quiet hours")
    finally:
        visit.close()
