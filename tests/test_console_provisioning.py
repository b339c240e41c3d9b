"""Putting devices into service from the technician's Devices page, in Debian's Chromium:
a device's card file imported (then listed as approved with its hamlet), an enrolment
token created, shown once with its bundle command and listed as open, and a device's
bundle made by the controller and saved by the browser."""

from __future__ import annotations

import zipfile

import pytest
import requests
from console_browser import PASSWORD, Visit

from controller.access import users
from controller.access.roles import TECHNICIAN
from provisioning.card import DeviceCard
from provisioning.identity import new_identity

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def technician(controller):
    controller.writer.call(lambda db: users.add_user(db, "nguoi-ky-thuat", TECHNICIAN, PASSWORD))
    return controller


def test_technician_imports_a_card_and_creates_an_enrolment_token(browser, technician,
                                                                   tmp_path):
    identity = new_identity("loa-an-binh-2", "speaker", hamlet="Ấp An Bình")
    card = tmp_path / "loa-an-binh-2.card.json"
    card.write_text(DeviceCard("loa-an-binh-2", "speaker", identity.password_hash,
                               hamlet="Ấp An Bình").to_json(), encoding="utf-8")
    visit = Visit(browser, technician.api_url)
    try:
        visit.sign_in("nguoi-ky-thuat")
        page = visit.page
        page.goto(technician.api_url + "/devices")
        # A card file: imported, then listed as approved with its hamlet.
        page.set_input_files("#import-card input[name=card]", str(card))
        page.click("#import-card button[type=submit]")
        page.wait_for_selector("#devices-outcome >> text=Đã nhập thiết bị loa-an-binh-2.",
                               timeout=10_000)
        row = page.wait_for_selector("table.devices tr[data-device=loa-an-binh-2]",
                                     timeout=10_000)
        assert "Ấp An Bình" in row.inner_text()
        assert technician.reader().execute(
            "SELECT status, hamlet FROM devices WHERE id = 'loa-an-binh-2'").fetchone() == (
            "approved", "Ấp An Bình")
        # The same card again is refused (the id is known) with the API's reason...
        page.set_input_files("#import-card input[name=card]", str(card))
        page.click("#import-card button[type=submit]")
        page.wait_for_selector("#devices-outcome.error", timeout=10_000)
        # ...and accepted as a replacement when the box is ticked.
        page.set_input_files("#import-card input[name=card]", str(card))
        page.check("#import-card input[name=replace]")
        page.click("#import-card button[type=submit]")
        page.wait_for_selector("#devices-outcome >> text=Đã thay thiết bị loa-an-binh-2",
                               timeout=10_000)
        assert "mật khẩu cũ bị từ chối" in page.inner_text("#devices-outcome")

        # An enrolment token: shown once, with the bundle command, and listed as open.
        page.fill("#new-enrolment input[name=device_id]", "kiosk-xa-3")
        page.select_option("#new-enrolment select[name=role]", "kiosk")
        page.fill("#new-enrolment input[name=hamlet]", "Ấp Tân Hòa")
        assert page.input_value("#new-enrolment input[name=ttl_h]") == "168"
        page.click("#new-enrolment button[type=submit]")
        page.wait_for_selector("#enrol-token:not([hidden])", timeout=10_000)
        token = page.inner_text("#enrol-token-value")
        assert token.startswith("te_")
        assert page.inner_text("#enrol-token-command") == (
            f"thanthien-provision bundle kiosk-xa-3 --role kiosk --enrol-token {token}")
        assert "Chỉ hiển thị một lần" in page.inner_text("#enrol-token")
        listed = page.wait_for_selector("table.enrolments tr[data-enrolment=kiosk-xa-3]",
                                        timeout=10_000)
        assert "chưa dùng" in listed.inner_text() and "Ấp Tân Hòa" in listed.inner_text()
        # Shown once: the page drawn again lists the token but never shows it.
        page.reload()
        assert page.is_hidden("#enrol-token")
        assert token not in page.content()
        assert "kiosk-xa-3" in page.inner_text("table.enrolments")
        # The hardware claims it: pending with its serial, the claim listed with its model.
        claim = requests.post(technician.api_url + "/api/v1/enrol", timeout=10, json={
            "token": token, "serial": "10000000abcd1234", "model": "Raspberry Pi 4",
            "password_hash": new_identity("kiosk-xa-3", "kiosk").password_hash})
        assert claim.json()["status"] == "pending", claim.text
        page.reload()
        assert "10000000abcd1234" in page.inner_text("section.pending tr[data-device=kiosk-xa-3]")
        claimed = page.inner_text("table.enrolments tr[data-enrolment=kiosk-xa-3]")
        assert "đã nhận" in claimed and "Raspberry Pi 4" in claimed
    finally:
        visit.close()


def test_technician_makes_a_bundle_and_the_browser_saves_it(browser, make_controller,
                                                            tmp_path):
    from test_enrolment import device_site
    ctl = make_controller(device_site=device_site(tmp_path))
    ctl.writer.call(lambda db: users.add_user(db, "nguoi-ky-thuat", TECHNICIAN, PASSWORD))
    visit = Visit(browser, ctl.api_url)
    try:
        visit.sign_in("nguoi-ky-thuat")
        page = visit.page
        page.goto(ctl.api_url + "/devices")
        assert page.get_attribute("#new-bundle input[name=wifi_key]", "type") == "password"
        assert page.input_value("#new-bundle select[name=os]") == ""  # the site's, unless chosen
        page.fill("#new-bundle input[name=device_id]", "loa-cay-gao-2")
        page.select_option("#new-bundle select[name=role]", "speaker")
        page.fill("#new-bundle input[name=hamlet]", "Ấp Cây Gáo")
        page.fill("#new-bundle input[name=wifi_key]", "mat-khau-wifi-2026")
        with page.expect_download(timeout=60_000) as download:
            page.click("#new-bundle button[type=submit]")
        assert download.value.suggested_filename == "loa-cay-gao-2.zip"
        saved = tmp_path / "loa-cay-gao-2.zip"
        download.value.save_as(saved)
        names = set(zipfile.ZipFile(saved).namelist())
        assert {"boot/user-data", "boot/thanthien/node.toml",
                "loa-cay-gao-2-label.pdf"} <= names
        page.wait_for_selector("#devices-outcome >> text=Đã tạo gói cho loa-cay-gao-2",
                               timeout=10_000)
        assert "phân vùng bootfs của thẻ SD" in page.inner_text("#devices-outcome")
        assert page.input_value("#new-bundle input[name=wifi_key]") == ""
        row = page.wait_for_selector("table.devices tr[data-device=loa-cay-gao-2]",
                                     timeout=10_000)
        assert "Ấp Cây Gáo" in row.inner_text()
        assert ctl.reader().execute(
            "SELECT status, hamlet FROM devices WHERE id = 'loa-cay-gao-2'").fetchone() == (
            "approved", "Ấp Cây Gáo")
        # The same id again is refused with the API's reason in the outcome area.
        page.fill("#new-bundle input[name=device_id]", "loa-cay-gao-2")
        page.select_option("#new-bundle select[name=role]", "speaker")
        page.fill("#new-bundle input[name=wifi_key]", "mat-khau-wifi-2026")
        page.click("#new-bundle button[type=submit]")
        page.wait_for_selector("#devices-outcome.error", timeout=60_000)
        refused = page.inner_text("#devices-outcome")
        assert "Đã tạo gói" not in refused and "đã được đăng ký" in refused, refused
        assert page.input_value("#new-bundle input[name=wifi_key]") == ""
    finally:
        visit.close()
