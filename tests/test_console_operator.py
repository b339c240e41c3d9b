"""The radio operator's console pages: over HTTP (each page and role, the check route, the
receipts grid, the emergency's speaker states) and in a real browser (upload with its
duration shown, a daily broadcast to two hamlets, the emergency's two-step flow)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import requests
from speaker_support import noise_wav

from controller.access import users
from controller.access.roles import LEADER, OPERATOR
from controller.broadcasts.schedule import TIMEZONE

PASSWORD = "mật-khẩu-đủ-dài-3"
PAGES = ("/audio", "/broadcasts", "/emergency", "/speakers")
TZ = ZoneInfo(TIMEZONE)


@pytest.fixture
def people(controller):
    for role in (OPERATOR, LEADER):
        controller.writer.call(lambda db, r=role: users.add_user(db, f"nguoi-{r}", r, PASSWORD))
    now = dt.datetime.now(TZ)
    # Quiet hours well away from now, so the tests pass at any time of day.
    controller.broadcasts.quiet_hours = (
        (now + dt.timedelta(hours=8)).time().replace(second=0, microsecond=0),
        (now + dt.timedelta(hours=9)).time().replace(second=0, microsecond=0))
    for device, hamlet in (("loa-a1", "Ấp Một"), ("loa-b1", "Ấp Hai"), ("loa-c1", "Ấp Ba")):
        controller.registry.add(device, "speaker", hamlet=hamlet)
    return controller


def signed_in(controller, role: str) -> requests.Session:
    http = requests.Session()
    resp = http.post(controller.api_url + "/signin", allow_redirects=False, timeout=10,
                     data={"name": f"nguoi-{role}", "password": PASSWORD, "next": "/"})
    assert resp.status_code == 303, resp.text
    page = http.get(controller.api_url + "/", timeout=10).text
    http.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
    return http


def upload(http: requests.Session, controller, title: str = "Bản tin sáng",
           seconds: float = 2.0) -> dict:
    resp = http.post(controller.api_url + "/api/v1/audio", timeout=30,
                     files={"file": ("ban-tin.wav", noise_wav(seconds))}, data={"title": title})
    assert resp.status_code == 201, resp.text
    return resp.json()


def later(hours: float = 1.0) -> str:
    start = dt.datetime.now(TZ) + dt.timedelta(hours=hours)
    return start.replace(second=0, microsecond=0, tzinfo=None).isoformat(timespec="minutes")


def test_each_operator_page_is_for_the_operator_only(people):
    operator, leader = signed_in(people, OPERATOR), signed_in(people, LEADER)
    page = operator.get(people.api_url + "/", timeout=10).text
    for path in PAGES:
        assert f'href="{path}"' in page, path
        resp = operator.get(people.api_url + path, timeout=10)
        assert resp.status_code == 200 and '<html lang="vi">' in resp.text, (path, resp.text[:300])
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert leader.get(people.api_url + path, timeout=10).status_code == 403, path
    assert f'href="{PAGES[0]}"' not in leader.get(people.api_url + "/", timeout=10).text


def test_uploaded_audio_is_listed_with_duration_and_playable(people):
    http = signed_in(people, OPERATOR)
    audio = upload(http, people, seconds=3.0)
    page = http.get(people.api_url + "/audio", timeout=10).text
    assert "Bản tin sáng" in page and "3.0" in page
    assert f'src="/audio/{audio["id"]}/file"' in page
    played = http.get(people.api_url + f"/audio/{audio['id']}/file", timeout=10)
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    assert played.content[:4] == b"RIFF"


def test_check_shows_conflicts_without_storing(people):
    http = signed_in(people, OPERATOR)
    audio = upload(http, people)
    body = {"audio_id": audio["id"], "start": later(), "rrule": "FREQ=DAILY;COUNT=5",
            "targets": {"hamlets": ["Ấp Một", "Ấp Hai"]}}
    check = http.post(people.api_url + "/api/v1/broadcasts/check", json=body, timeout=10)
    assert check.status_code == 200, check.text
    assert check.json()["ok"] and check.json()["speakers"] == ["loa-a1", "loa-b1"]
    assert len(check.json()["next"]) == 5
    assert http.get(people.api_url + "/api/v1/broadcasts", timeout=10).json() == []
    assert http.post(people.api_url + "/api/v1/broadcasts", json=body,
                     timeout=10).status_code == 201
    again = http.post(people.api_url + "/api/v1/broadcasts/check", json=body, timeout=10).json()
    assert not again["ok"] and "Trùng giờ với bản tin" in again["problems"][0]  # the page's
    quiet = people.broadcasts.quiet_hours[0].strftime("%H:%M")
    start = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1),
                                dt.time.fromisoformat(quiet)).isoformat(timespec="minutes")
    night = http.post(people.api_url + "/api/v1/broadcasts/check", timeout=10,
                      json={**body, "start": start, "targets": {"all": True}}).json()
    assert not night["ok"] and any("giờ yên tĩnh" in p for p in night["problems"])
    page = http.get(people.api_url + "/broadcasts", timeout=10).text
    assert "FREQ=DAILY;COUNT=5" in page and "Ấp Hai, Ấp Một" in page


def test_receipts_grid_shows_each_speaker_and_the_reason_of_a_miss(people):
    http = signed_in(people, OPERATOR)
    audio = upload(http, people)
    start = (dt.datetime.now(TZ) - dt.timedelta(minutes=10)).replace(tzinfo=None)
    people.writer.call(lambda db: db.execute(
        "INSERT INTO broadcasts (title, audio_id, level, start, rrule, repeat_s, expires, targets,"
        " overlap, status, created) VALUES ('Tin cũ', ?, 'normal', ?, NULL, NULL, NULL,"
        " '{\"hamlets\": [\"Ấp Một\", \"Ấp Hai\"]}', 'reject', 'active', 0)",
        (audio["id"], start.isoformat())))
    bid = http.get(people.api_url + "/api/v1/broadcasts", timeout=10).json()[0]["id"]
    page = http.get(people.api_url + f"/broadcasts/{bid}/receipts", timeout=10)
    assert page.status_code == 200
    assert "loa-a1" in page.text and "loa-b1" in page.text and "Ấp Hai" in page.text
    assert "không có xác nhận" in page.text and "no receipt yet" in page.text
    assert f"/api/v1/broadcasts/{bid}/receipts?format=csv" in page.text
    csv = http.get(people.api_url + f"/api/v1/broadcasts/{bid}/receipts?format=csv", timeout=10)
    assert csv.status_code == 200 and "loa-a1" in csv.text
    assert signed_in(people, LEADER).get(people.api_url + f"/broadcasts/{bid}/receipts",
                                         timeout=10).status_code == 403


def test_emergency_speakers_fragment_shows_each_target_speaker(people):
    http = signed_in(people, OPERATOR)
    audio = upload(http, people)
    sent = http.post(people.api_url + "/api/v1/broadcasts/emergency", timeout=10,
                     json={"audio_id": audio["id"], "targets": {"hamlets": ["Ấp Một", "Ấp Ba"]}})
    assert sent.status_code == 201, sent.text
    fragment = http.get(people.api_url + f"/emergency/{sent.json()['id']}/speakers", timeout=10)
    assert fragment.status_code == 200
    assert re.findall(r'data-speaker="([^"]+)"', fragment.text) == ["loa-a1", "loa-c1"]
    assert "đang chờ" in fragment.text  # no node runs its config: waiting
    page = http.get(people.api_url + "/emergency", timeout=10).text
    assert f'hx-get="/emergency/{sent.json()["id"]}/speakers"' in page
    assert 'hx-trigger="every 1s"' in page


def test_volumes_and_quiet_hours_page_shows_the_current_settings(people):
    http = signed_in(people, OPERATOR)
    assert http.put(people.api_url + "/api/v1/speakers/quiet-hours", timeout=10,
                    json={"from": "22:30", "to": "05:00"}).status_code == 200
    assert http.put(people.api_url + "/api/v1/speakers/loa-b1/volume", timeout=10,
                    json={"volume": 0.35}).status_code == 200
    page = http.get(people.api_url + "/speakers", timeout=10).text
    assert 'value="22:30"' in page and 'value="05:00"' in page
    assert re.search(r"loa-b1</td><td>Ấp Hai</td><td class=\"num\">35<", page)


# -- in a real browser ------------------------------------------------------------------------

playwright = pytest.importorskip("playwright.sync_api")
from console_browser import Visit  # noqa: E402


def sign_in(visit: Visit) -> None:
    visit.sign_in("nguoi-operator", PASSWORD)


def test_browser_upload_then_schedule_daily_to_two_hamlets(browser, people, tmp_path):
    wav = tmp_path / "ban-tin.wav"
    wav.write_bytes(noise_wav(2.0))
    visit = Visit(browser, people.api_url)
    try:
        sign_in(visit)
        page = visit.page
        page.goto(people.api_url + "/audio")
        page.fill("#audio-title", "Bản tin chiều")
        page.set_input_files("#audio-file", str(wav))
        page.click("form.upload button[type=submit]")
        row = page.wait_for_selector("table.audio-list tr:has-text('Bản tin chiều')")
        assert "2.0" in row.inner_text()
        assert page.evaluate("document.querySelector('form.upload progress').value") >= 0
        page.goto(people.api_url + "/broadcasts")
        page.fill("#b-start", later(2))
        page.select_option("#b-freq", "daily")
        page.select_option("#b-end", "count")
        page.fill("#b-count", "3")
        page.check("input[name=target][value=hamlets]")
        page.check("input[name=hamlet][value='Ấp Một']")
        page.check("input[name=hamlet][value='Ấp Hai']")
        assert page.inner_text("output.rrule") == "FREQ=DAILY;COUNT=3"
        page.click("button.check")
        page.wait_for_selector("output.result >> text=Không có xung đột")
        assert "Số loa: 2" in page.inner_text("output.result")
        page.click("form.schedule button[type=submit]")
        page.wait_for_selector("table.broadcasts >> text=FREQ=DAILY;COUNT=3")
        assert "Ấp Hai, Ấp Một" in page.inner_text("table.broadcasts")
        assert page.locator(".week-grid li").count() >= 1
    finally:
        visit.close()


def test_browser_emergency_two_step_shows_speaker_states_and_cancels(browser, people):
    http = signed_in(people, OPERATOR)
    upload(http, people, title="Bão số 5")
    visit = Visit(browser, people.api_url)
    try:
        sign_in(visit)
        page = visit.page
        page.goto(people.api_url + "/emergency")
        page.check("input[name=target][value=hamlets]")
        page.check("input[name=hamlet][value='Ấp Hai']")
        page.click("form.emergency button[type=submit]")
        summary = page.wait_for_selector("#emergency-summary:not([hidden])")
        assert "Bão số 5" in summary.inner_text() and "Ấp Hai" in summary.inner_text()
        assert http.get(people.api_url + "/api/v1/broadcasts", timeout=10).json() == []
        page.click("button.confirm")
        page.wait_for_url(re.compile(r".*/emergency\?id=\d+$"))
        page.wait_for_selector("tr[data-speaker=loa-b1] >> text=đang chờ")
        # A receipt arrives: the state follows within a second, without reloading.
        bid = int(page.url.rsplit("=", 1)[1])
        occurrence = http.get(people.api_url + f"/api/v1/broadcasts/{bid}", timeout=10).json()
        start = dt.datetime.fromisoformat(occurrence["start"].replace("Z", "+00:00"))
        page.wait_for_timeout(max(0, (start - dt.datetime.now(dt.UTC)).total_seconds()) * 1000)
        occ = f"{bid}@{start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
        people.writer.call(lambda db: db.execute(
            "INSERT INTO playback_receipts (device, occurrence, broadcast_id, status, reason,"
            " event_id, data) VALUES ('loa-b1', ?, ?, 'skipped', 'device fault', 'e-1', '{}')",
            (occ, bid)))
        page.wait_for_selector("tr[data-speaker=loa-b1] >> text=lỗi", timeout=3000)
        assert "device fault" in page.inner_text("tr[data-speaker=loa-b1]")
        page.once("dialog", lambda d: d.accept())
        page.click("text=Hủy tin khẩn cấp")
        page.wait_for_selector("caption >> text=đã hủy")
    finally:
        visit.close()


@pytest.mark.parametrize("path", PAGES)
def test_operator_pages_have_no_serious_accessibility_violations(browser, people, path):
    """axe-core (from npm) in the page: nothing serious or critical."""
    from console_browser import AXE
    http = signed_in(people, OPERATOR)
    upload(http, people)
    visit = Visit(browser, people.api_url, bypass_csp=True)  # to inject axe itself
    try:
        sign_in(visit)
        visit.page.goto(people.api_url + path)
        visit.page.add_script_tag(path=str(AXE))
        found = visit.page.evaluate("axe.run().then(r => r.violations.map("
                                    "v => [v.id, v.impact, v.nodes.length]))")
        serious = [v for v in found if v[1] in ("serious", "critical")]
        assert serious == [], serious
    finally:
        visit.close()


def test_month_view_places_a_daily_bulletin_on_every_day_from_its_start(people):
    http = signed_in(people, OPERATOR)
    audio = upload(http, people, title="Bản tin hằng ngày")
    first = (dt.datetime.now(TZ).date().replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    resp = http.post(people.api_url + "/api/v1/broadcasts", timeout=10, json={
        "audio_id": audio["id"], "start": f"{first.isoformat()}T06:00", "rrule": "FREQ=DAILY"})
    assert resp.status_code == 201, resp.text
    page = http.get(people.api_url + f"/broadcasts?month={first.isoformat()[:7]}", timeout=10)
    assert page.status_code == 200 and f"Tháng {first:%m/%Y}" in page.text
    days_in_month = ((first + dt.timedelta(days=32)).replace(day=1) - first).days
    grid = page.text.split('class="week-grid month-grid"', 1)[1].split("</section>", 1)[0]
    assert grid.count("Bản tin hằng ngày") >= days_in_month
    assert "Tháng trước" in page.text and "Tuần" in page.text
    bad = http.get(people.api_url + "/broadcasts?month=2026-13", timeout=10)
    assert bad.status_code == 200  # an impossible month shows this one
