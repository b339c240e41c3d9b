"""The commune's public information (officials' phone numbers, the hotline, notices):
validated once at the controller, merged into every kiosk's desired config without
touching its desk or officer, shown on the kiosk's idle screen, offline too."""

from __future__ import annotations

import pytest
import requests

from conftest import node_config, wait_for
from controller.access import tokens
from controller.access.roles import LEADER, OPERATOR, TECHNICIAN
from controller.errors import InvalidRequest
from controller.fleet.desired_config import get_desired
from controller.ratings.public_info import get_public_info, validate
from kiosk.settings import parse_settings
from kiosk.terminal import Terminal
from node_runtime.node import Node

INFO = {
    "hotline": "0251 3861 234",
    "contacts": [
        {"name": "Trần Văn Hùng", "title": "Bí thư Đảng ủy xã", "phone": "0912 345 101"},
        {"name": "Lê Thị Mai", "title": "Chủ tịch UBND xã", "phone": "+84 912.345.102"},
        {"name": "Phạm Văn An", "phone": "0251-3861-235"},
    ],
    "notices": ["Từ 01/7 tiếp nhận hồ sơ vào sáng thứ Bảy."],
}


class Api:
    def __init__(self, controller, role: str = LEADER):
        self.url = controller.api_url + "/api/v1"
        token = controller.writer.call(lambda db: tokens.create_token(db, f"t-{role}", role))
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, body=None) -> requests.Response:
        return requests.request(method, self.url + path, json=body, headers=self.headers,
                                timeout=10)


@pytest.fixture
def api(controller) -> Api:
    return Api(controller)


# -- the domain ----------------------------------------------------------------------------


def test_validate_normalises_and_fills_the_missing_parts():
    doc = validate({"contacts": [{"name": " Lê Thi\u0323 Mai ", "phone": "0912 345 102"}]})
    assert doc == {"contacts": [{"name": "Lê Thị Mai", "title": "", "phone": "0912 345 102"}],
                   "hotline": "", "notices": []}


@pytest.mark.parametrize(("body", "field"), [
    ({"contacts": [{"name": "A", "phone": "gọi tôi"}]}, "contacts[0].phone"),
    ({"contacts": [{"name": "A", "phone": "12"}]}, "contacts[0].phone"),
    ({"contacts": [{"name": "", "phone": "0912 345 678"}]}, "contacts[0].name"),
    ({"contacts": [{"name": "A", "phone": "0912", "email": "x"}]}, "contacts[0].email"),
    ({"contacts": [{"name": "A", "phone": "0912"}] * 31}, "contacts"),
    ({"contacts": "0912"}, "contacts"),
    ({"notices": ["x"] * 6}, "notices"),
    ({"notices": ["ok", "x" * 201]}, "notices[1]"),
    ({"notices": [""]}, "notices[0]"),
    ({"hotline": 912}, "hotline"),
    ({"phones": []}, "phones"),
])
def test_validate_names_the_bad_field(body, field):
    with pytest.raises(InvalidRequest) as err:
        validate(body)
    assert str(err.value).startswith(field), str(err.value)


# -- the API ---------------------------------------------------------------------------------


def test_put_then_get_and_every_role_may_read(controller, api):
    assert api("GET", "/public-info").json() == {"contacts": [], "hotline": "", "notices": [],
                                                 "updated": None}
    put = api("PUT", "/public-info", INFO)
    assert put.status_code == 200, put.text
    assert put.json()["contacts"][2] == {"name": "Phạm Văn An", "title": "",
                                         "phone": "0251-3861-235"}
    for role in (OPERATOR, TECHNICIAN):
        got = Api(controller, role)("GET", "/public-info").json()
        assert got["hotline"] == "0251 3861 234" and len(got["contacts"]) == 3
    refused = Api(controller, TECHNICIAN)("PUT", "/public-info", INFO)
    assert refused.status_code == 403
    with controller.reader().connection() as db:
        assert get_public_info(db)["notices"] == INFO["notices"]


@pytest.mark.parametrize(("body", "field"), [
    ({"contacts": [{"name": "A", "phone": "abc-def"}]}, "contacts[0].phone"),
    ({"notices": ["x"] * 6}, "notices"),
    ({"notices": ["x" * 201]}, "notices"),
    ({"contacts": [{"name": "A", "phone": "0912", "fax": "1"}]}, "fax"),
    ({"hotline": ["0912"]}, "hotline"),
])
def test_put_refuses_bad_bodies_naming_the_field(api, body, field):
    response = api("PUT", "/public-info", body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert api("GET", "/public-info").json()["contacts"] == []


# -- the kiosks ------------------------------------------------------------------------------


def test_kiosks_get_it_in_their_desired_config_keeping_desk_and_officer(
        controller, make_node, api, tmp_path, broker):
    node = make_node("kiosk-pi1", controller=controller)
    other = make_node("kiosk-pi2", controller=controller)
    speaker = make_node("spk-pi1", controller=controller, role="speaker")
    assert api("PUT", "/desks/quay-1", {"name": "Quầy 1", "kiosk": "kiosk-pi1"}).ok
    controller.desired_config.patch("kiosk-pi1", {"officer": {"id": "lan", "name": "Lan"}})
    wait_for(lambda: node.desired.get("officer"))
    assert api("PUT", "/public-info", INFO).ok
    wait_for(lambda: node.desired.get("public_info") and other.desired.get("public_info"))
    assert node.desired["public_info"] == {k: INFO[k] for k in ("hotline", "notices")} | {
        "contacts": api("GET", "/public-info").json()["contacts"]}
    assert node.desired["desk"] == "Quầy 1" and node.desired["desk_id"] == "quay-1"
    assert node.desired["officer"] == {"id": "lan", "name": "Lan"}
    with controller.reader().connection() as db:  # a speaker has no idle screen
        assert "public_info" not in get_desired(db, speaker.device_id)["config"]

    # A roster change afterwards keeps the public information.
    assert api("PUT", "/desks/quay-1", {"name": "Quầy một", "kiosk": "kiosk-pi1"}).ok
    wait_for(lambda: node.desired.get("desk") == "Quầy một")
    assert node.desired["public_info"]["hotline"] == "0251 3861 234"

    # An edit replaces the whole document: a contact removed is gone, the hotline too.
    assert api("PUT", "/public-info", {"contacts": INFO["contacts"][:1]}).ok
    wait_for(lambda: len(node.desired["public_info"]["contacts"]) == 1)
    assert node.desired["public_info"] == {"contacts": [{**INFO["contacts"][0]}],
                                           "hotline": "", "notices": []}

    # The kiosk keeps it across a restart without the controller (its stored config).
    node.close()
    offline = Node(node_config(tmp_path, broker, "kiosk-pi1"))
    assert offline.desired["public_info"]["contacts"][0]["phone"] == "0912 345 101"
    assert offline.desired["desk"] == "Quầy một"

    # Cleared: the key leaves the config, the kiosk falls back to its own free text.
    assert api("PUT", "/public-info", {}).ok
    wait_for(lambda: "public_info" not in other.desired)
    assert other.config_version >= 2


def test_a_kiosk_approved_later_gets_it_on_the_next_sweep(controller, make_node, api):
    assert api("PUT", "/public-info", INFO).ok
    node = make_node("kiosk-pi3", controller=controller)
    wait_for(lambda: node.desired.get("public_info"))
    assert node.desired["public_info"]["hotline"] == "0251 3861 234"
    version = node.config_version
    # Unchanged: the sweep pushes nothing more.
    assert controller.public_info.push_all() == []
    assert node.config_version == version


# -- the kiosk's idle screen (its model) -------------------------------------------------


def test_idle_information_band_shows_phones_and_notices_else_the_kiosks_own_text():
    own = parse_settings({"info": ["Wi-Fi: UBND-xa"]})
    assert own.info_items() == ({"vi": "Wi-Fi: UBND-xa"},) and own.hotline == ""
    s = parse_settings({"public_info": INFO}, own)
    pages = s.info_items()
    assert s.hotline == "0251 3861 234"
    assert pages[0]["vi"] == ("Số điện thoại công khai\n"
                              "Bí thư Đảng ủy xã Trần Văn Hùng: 0912 345 101\n"
                              "Chủ tịch UBND xã Lê Thị Mai: +84 912.345.102")
    assert pages[0]["en"].startswith("Public phone numbers\n")
    assert pages[1]["vi"] == "Số điện thoại công khai\nPhạm Văn An: 0251-3861-235"
    assert pages[2]["vi"] == "Thông báo: Từ 01/7 tiếp nhận hồ sơ vào sáng thứ Bảy."
    assert len(pages) == 3


def test_terminal_applies_and_drops_public_info_from_the_controller():
    terminal = Terminal(lambda *a: {"id": "1"}, "kiosk-t", parse_settings(
        {"info": ["Giờ làm việc: 7:00–17:00"]}))
    terminal.configure({"desk": "Quầy 1", "public_info": INFO})
    assert "0912 345 101" in terminal.settings.info_items()[0]["vi"]
    assert terminal.settings.desk == "Quầy 1"
    terminal.configure({"desk": "Quầy 1"})  # removed by the controller
    assert terminal.settings.info_items() == ({"vi": "Giờ làm việc: 7:00–17:00"},)
    with pytest.raises(Exception, match="public_info"):
        terminal.configure({"public_info": {"contacts": "0912"}})
