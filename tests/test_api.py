"""The HTTP API: auth, devices, ratings, commands, config, OpenAPI, clear errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import requests

from conftest import wait_for
from controller.access.tokens import create_token


def call(ctl, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(ctl.api_url + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture
def token(controller):
    return controller.writer.call(lambda db: create_token(db, "test-admin"))


def test_health_is_public_and_reports_counters(controller):
    status, body = call(controller, "GET", "/api/v1/health")
    assert status == 200 and body["status"] == "ok" and body["mqtt_connected"] is True


def test_endpoints_need_a_valid_token(controller, token):
    assert call(controller, "GET", "/api/v1/devices")[0] == 401
    status, body = call(controller, "GET", "/api/v1/devices", token="tt_wrong")
    assert status == 401 and "unknown" in body["error"]
    assert call(controller, "GET", "/api/v1/devices", token=token)[0] == 200


def test_tokens_are_stored_hashed(controller, token):
    stored = controller.reader().execute("SELECT hash FROM api_tokens").fetchone()[0]
    assert token not in stored and len(stored) == 64


def test_devices_list_online_state_and_telemetry(controller, make_node, token):
    node = make_node("kiosk-30", controller=controller)
    wait_for(lambda: node.online)
    device = wait_for(lambda: next((d for d in call(controller, "GET", "/api/v1/devices",
                                                    token=token)[1]
                                    if d["id"] == "kiosk-30" and d["telemetry"]), None))
    assert device["role"] == "kiosk" and device["online"] is True and device["last_seen"]
    assert device["telemetry"]["outbox_depth"] == 0
    assert "uptime_s" in device["telemetry"]


def test_ratings_listed_with_filters(controller, make_node, token):
    node = make_node("kiosk-31", controller=controller)
    node.emit("rating", {"level": 4, "scale": 4})
    node.emit("rating", {"level": 1, "scale": 4, "misuse": True})
    wait_for(lambda: node.outbox.depth == 0)
    status, ratings = call(controller, "GET", "/api/v1/ratings", token=token)
    assert status == 200 and [r["level"] for r in ratings] == [4]
    _, everything = call(controller, "GET", "/api/v1/ratings?include_misuse=true", token=token)
    assert sorted(r["level"] for r in everything) == [1, 4]
    _, none = call(controller, "GET", "/api/v1/ratings?since=2999-01-01T00:00:00Z", token=token)
    assert none == []
    status, body = call(controller, "GET", "/api/v1/ratings?since=yesterday", token=token)
    assert status == 400 and "yesterday" in body["error"]


def test_impossible_rating_is_kept_as_event_and_counted(controller, make_node, token):
    node = make_node("kiosk-32", controller=controller)
    node.emit("rating", {"level": 9, "scale": 4})
    wait_for(lambda: node.outbox.depth == 0)  # acked: not resent forever
    assert call(controller, "GET", "/api/v1/ratings", token=token)[1] == []
    _, health = call(controller, "GET", "/api/v1/health")
    assert health["rejections"]["event_data"] == 1
    assert "level 9" in health["recent_rejections"][-1]["detail"]


def test_command_via_api_reaches_device(controller, make_node, token):
    node = make_node("kiosk-33", controller=controller)
    node.command("ping", lambda args: {"pong": args})
    wait_for(lambda: node.online)
    status, command = call(controller, "POST", "/api/v1/devices/kiosk-33/commands",
                           {"name": "ping", "args": {"n": 1}, "ttl_s": 30}, token=token)
    assert status == 201
    done = wait_for(lambda: (c := call(controller, "GET", f"/api/v1/commands/{command['id']}",
                                       token=token)[1])["status"] == "done" and c)
    assert done["result"] == {"pong": {"n": 1}}


@pytest.mark.parametrize("body, words", [
    ({"args": {}}, "name: required"),
    ({"name": "", "args": {}}, "name '': expected at least 1 character"),
    ({"name": "x", "args": [1]}, "args [1]: expected a JSON object"),
    ({"name": "x", "ttl_s": -5}, "'ttl_s' -5"),
    ({"name": "x", "ttl_s": "soon"}, "ttl_s 'soon': expected a number"),
    ({"name": "x", "tll_s": 5}, "tll_s: unknown field"),
])
def test_bad_commands_get_clear_errors(controller, make_node, token, body, words):
    make_node("kiosk-34", controller=controller, start=False)
    status, error = call(controller, "POST", "/api/v1/devices/kiosk-34/commands", body,
                         token=token)
    assert status == 400 and words in error["error"]


def test_command_for_unknown_device_is_404(controller, token):
    status, body = call(controller, "POST", "/api/v1/devices/nobody-1/commands",
                        {"name": "restart"}, token=token)
    assert status == 404 and "nobody-1" in body["error"]


def test_not_json_body_is_400(controller, token):
    request = urllib.request.Request(controller.api_url + "/api/v1/devices", data=b"{oops",
                                     method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400 and "not JSON" in json.load(info.value)["error"]


def test_config_put_and_get(controller, make_node, token):
    node = make_node("kiosk-35", controller=controller)
    wait_for(lambda: node.online)
    status, body = call(controller, "PUT", "/api/v1/devices/kiosk-35/config",
                        {"config": {"language": "vi"}}, token=token)
    assert status == 200 and body["version"] == 1
    wait_for(lambda: call(controller, "GET", "/api/v1/devices/kiosk-35/config",
                          token=token)[1]["reported_version"] == 1)
    status, body = call(controller, "PUT", "/api/v1/devices/kiosk-35/config",
                        {"config": "vi"}, token=token)
    assert status == 400 and "JSON object" in body["error"]


def test_pending_device_can_be_approved_over_api(controller, make_node, token):
    node = make_node("stranger-30")
    wait_for(lambda: any(d["id"] == "stranger-30" for d in call(
        controller, "GET", "/api/v1/devices?status=pending", token=token)[1]))
    node.emit("rating", {"level": 2, "scale": 4})
    status, _ = call(controller, "POST", "/api/v1/devices/stranger-30/approve", token=token)
    assert status == 200
    wait_for(lambda: node.outbox.depth == 0, timeout=20)


def test_openapi_lists_every_route(controller):
    status, spec = call(controller, "GET", "/api/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    for path in ("/api/v1/health", "/api/v1/devices", "/api/v1/ratings",
                 "/api/v1/devices/{id}/commands"):
        assert path in spec["paths"]
    assert spec["paths"]["/api/v1/devices"]["get"]["security"] == [{"bearer": []}]


def test_unknown_endpoint_and_method(controller, token):
    assert call(controller, "GET", "/api/v1/nothing", token=token)[0] == 404
    assert call(controller, "DELETE", "/api/v1/health")[0] == 405


def test_interactive_docs_are_served_without_any_cdn(controller):
    page = requests.get(controller.api_url + "/api/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    script = requests.get(controller.api_url + "/static/vendor/swagger-ui/swagger-ui-bundle.js",
                          timeout=10)
    assert script.status_code == 200 and len(script.content) > 100_000


def test_openapi_describes_request_bodies_and_parameters(controller):
    _, spec = call(controller, "GET", "/api/v1/openapi.json")
    command = spec["paths"]["/api/v1/devices/{id}/commands"]["post"]
    schema = command["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][schema.rsplit("/", 1)[1]]
    assert set(body["properties"]) == {"name", "args", "ttl_s"} and body["required"] == ["name"]
    ratings = spec["paths"]["/api/v1/ratings"]["get"]
    limit = next(p for p in ratings["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 10_000
    upload = spec["paths"]["/api/v1/audio"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]


BAD_BODIES = [b"{oops", b"[]", b"null", b'"text"', b"\xff\xfe\x00", b"[" * 50_000,
              b'{"a": NaN}', b'{"' + b"x" * 5000 + b'": 1}', b"{}"]


def test_every_route_answers_bad_input_with_a_clear_4xx_never_a_500(controller, token):
    """A small fuzzer: every route of the OpenAPI document, each bad body and bad path."""
    _, spec = call(controller, "GET", "/api/v1/openapi.json")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    refused = 0
    for path, methods in spec["paths"].items():
        url = controller.api_url + path.replace("{", "").replace("}", "")  # ids like 'id'
        for method in methods:
            for body in BAD_BODIES if method in ("post", "put") else [None]:
                resp = http.request(method, url, data=body, timeout=10,
                                    params={"limit": "-1", "since": "\x00"})
                assert resp.status_code < 500, (method, path, body, resp.text)
                if resp.status_code >= 400 and resp.headers.get(
                        "content-type", "").startswith("application/json"):
                    assert resp.json()["error"], (method, path, body)
                refused += resp.status_code >= 400
    assert refused > 100
