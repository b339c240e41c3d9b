"""The radio operator's console with real loudspeakers (speaker nodes playing into ALSA
files, as in tests/test_speaker_playback.py), in Debian's Chromium: an emergency sounded
from the console plays in the chosen hamlet only and each speaker's state follows live to
"done"; a bulletin scheduled from the console to two hamlets is played there and its
receipts arrive in the hamlet × speaker grid."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from speaker_support import noise_wav

from conftest import wait_for
from controller.access import users
from controller.access.roles import OPERATOR

playwright = pytest.importorskip("playwright.sync_api")
from console_browser import Visit  # noqa: E402

PASSWORD = "mật-khẩu-đủ-dài-5"


@pytest.fixture
def operator(bed):
    bed.ctl.writer.call(lambda db: users.add_user(db, "dai-truyen-thanh", OPERATOR, PASSWORD))
    return bed


def sign_in(visit: Visit) -> None:
    visit.sign_in("dai-truyen-thanh", PASSWORD)


def test_emergency_from_the_console_plays_in_one_hamlet_with_live_states(
        browser, operator):
    bed = operator
    assert bed.upload(noise_wav(3.0), title="Bão khẩn cấp").status_code == 201
    bed.speaker("loa-xa-1", hamlet="Ấp Xa")
    bed.speaker("loa-xa-2", hamlet="Ấp Xa")
    bed.speaker("loa-gan-1", hamlet="Ấp Gần")
    visit = Visit(browser, bed.ctl.api_url)
    try:
        sign_in(visit)
        page = visit.page
        page.goto(bed.ctl.api_url + "/emergency")
        page.check("input[name=target][value=hamlets]")
        page.check("input[name=hamlet][value='Ấp Xa']")
        page.click("form.emergency button[type=submit]")
        page.wait_for_selector("#emergency-summary:not([hidden])")
        page.click("button.confirm")
        # Playing: the speaker says so the moment it starts (telemetry), then done.
        page.wait_for_selector("tr[data-speaker=loa-xa-1] >> text=đang phát", timeout=30_000)
        for speaker in ("loa-xa-1", "loa-xa-2"):
            page.wait_for_selector(f"tr[data-speaker={speaker}] >> text=xong", timeout=30_000)
        assert page.locator("tr[data-speaker=loa-gan-1]").count() == 0
    finally:
        visit.close()
    played = {r[0] for r in bed.ctl.reader().execute(
        "SELECT device FROM playback_receipts WHERE status = 'played'").fetchall()}
    assert played == {"loa-xa-1", "loa-xa-2"}


def test_bulletin_scheduled_from_the_console_reaches_two_hamlets_and_its_receipts_show(
        browser, operator, tmp_path):
    bed = operator
    wav = tmp_path / "ban-tin.wav"
    wav.write_bytes(noise_wav(1.0))
    for device, hamlet in (("loa-mot", "Ấp Một"), ("loa-hai", "Ấp Hai"), ("loa-ba", "Ấp Ba")):
        bed.speaker(device, hamlet=hamlet)
    visit = Visit(browser, bed.ctl.api_url)
    try:
        sign_in(visit)
        page = visit.page
        page.goto(bed.ctl.api_url + "/audio")
        page.fill("#audio-title", "Bản tin trưa")
        page.set_input_files("#audio-file", str(wav))
        page.click("form.upload button[type=submit]")
        page.wait_for_selector("table.audio-list tr:has-text('Bản tin trưa')")
        # The form takes local minutes: the next whole minute, at least 20 s away.
        start = (dt.datetime.now(ZoneInfo(bed.ctl.broadcasts.tz)) + dt.timedelta(seconds=80)
                 ).replace(second=0, microsecond=0)
        page.goto(bed.ctl.api_url + "/broadcasts")
        page.fill("#b-start", start.replace(tzinfo=None).isoformat(timespec="minutes"))
        page.check("input[name=target][value=hamlets]")
        page.check("input[name=hamlet][value='Ấp Một']")
        page.check("input[name=hamlet][value='Ấp Hai']")
        page.click("form.schedule button[type=submit]")
        page.wait_for_selector("table.broadcasts >> text=Bản tin trưa")
        [item] = bed.http.get(bed.url("/api/v1/broadcasts"), timeout=10).json()
        played = "SELECT device FROM playback_receipts WHERE broadcast_id = ? AND status = 'played'"
        wait_for(lambda: len(bed.ctl.reader().execute(played, (item["id"],)).fetchall()) == 2,
                 timeout=150)
        page.goto(bed.ctl.api_url + f"/broadcasts/{item['id']}/receipts")
        grid = page.inner_text("main")
        assert "loa-mot" in grid and "loa-hai" in grid and "loa-ba" not in grid
        assert grid.count("đã phát") >= 2
    finally:
        visit.close()
