"""Who may do what: every route against the table in docs/security.md, every route called
as every role over real HTTP, the audit log, users and their passwords."""

from __future__ import annotations

import pathlib
import re
import sqlite3
import time

import pytest
import requests

from conftest import wait_for
from controller.access import tokens, users
from controller.access.roles import ADMIN, LEADER, OPERATOR, ROLES, TECHNICIAN
from controller.cli import main as controller_main
from controller.errors import Unauthorized
from controller.web.app import ROUTERS
from controller.web.auth import require_token
from controller.web.gate import _depends_on, route_roles

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "security.md"


def declared() -> dict[tuple[str, str], set[str]]:
    """(method, path) -> who may call it, from the routes themselves."""
    out = {}
    for router in ROUTERS:
        for route in router.routes:
            public = not _depends_on(route.dependant, require_token)
            who = {"public"} if public else {ADMIN, *(route_roles(route) or ())}
            for method in route.methods:
                out[(method, route.path)] = who
    return out


def documented() -> dict[tuple[str, str], set[str]]:
    rows = re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| ([^|]+) \|$",
                      DOC.read_text(), flags=re.M)
    return {(m, p): {w.strip() for w in who.split(",")} for m, p, who in rows}


def test_every_route_declares_the_roles_docs_security_lists():
    assert declared() == documented()


def test_every_protected_route_declares_its_roles():
    """A route with a token but no ``allow(...)`` would be open to every role."""
    missing = [(sorted(route.methods), route.path) for router in ROUTERS
               for route in router.routes
               if _depends_on(route.dependant, require_token) and route_roles(route) is None]
    assert missing == []


@pytest.fixture
def role_tokens(controller):
    return {role: controller.writer.call(lambda db, r=role: tokens.create_token(db, f"t-{r}", r))
            for role in ROLES}


def test_each_role_is_refused_exactly_where_the_table_says(controller, role_tokens):
    http = requests.Session()
    for (method, path), who in sorted(declared().items()):
        if who == {"public"}:
            continue
        url = controller.api_url + path.replace("{", "x").replace("}", "")
        for role, token in role_tokens.items():
            # Streamed: a live page (server-sent events) answers at once but never ends.
            with http.request(method, url, json={} if method in ("POST", "PUT") else None,
                              headers={"Authorization": f"Bearer {token}"}, timeout=10,
                              stream=True) as resp:
                status = resp.status_code
                if not resp.headers.get("content-type", "").startswith("text/event-stream"):
                    resp.content  # noqa: B018 (read, for the error below)
            allowed = role in who
            assert (status == 403) != allowed, (role, method, path, resp.text)
            if not allowed:
                assert role in resp.json()["error"] and "needs" in resp.json()["error"]


def test_operator_cannot_approve_a_device_and_technician_cannot_read_ratings(
        controller, role_tokens):
    """The issue's own example, as a person would try it."""
    approve = requests.post(controller.api_url + "/api/v1/devices",
                            json={"id": "kiosk-s1", "role": "kiosk"}, timeout=10,
                            headers={"Authorization": f"Bearer {role_tokens[OPERATOR]}"})
    assert approve.status_code == 403
    ratings = requests.get(controller.api_url + "/api/v1/ratings", timeout=10,
                           headers={"Authorization": f"Bearer {role_tokens[TECHNICIAN]}"})
    assert ratings.status_code == 403 and "leader" in ratings.json()["error"]
    own = requests.get(controller.api_url + "/api/v1/ratings", timeout=10,
                       headers={"Authorization": f"Bearer {role_tokens[LEADER]}"})
    assert own.status_code == 200


def test_audit_log_records_changes_and_refusals_and_cannot_be_rewritten(
        controller, role_tokens):
    leader = {"Authorization": f"Bearer {role_tokens[LEADER]}"}
    assert requests.put(controller.api_url + "/api/v1/alerts/rules", json={"min_answers": 5},
                        headers=leader, timeout=10).status_code == 200
    assert requests.post(controller.api_url + "/api/v1/broadcasts/emergency",
                         json={"audio_id": 1}, headers=leader, timeout=10).status_code == 403
    admin = {"Authorization": f"Bearer {role_tokens[ADMIN]}"}

    def entries():
        return requests.get(controller.api_url + "/api/v1/audit", headers=admin,
                            timeout=10).json()


    got = wait_for(lambda: len(entries()) >= 2 and entries())
    assert [(e["method"], e["path"], e["status"], e["user"], e["role"]) for e in got[:2]] == [
        ("POST", "/api/v1/broadcasts/emergency", 403, "t-leader", "leader"),
        ("PUT", "/api/v1/alerts/rules", 200, "t-leader", "leader")]
    assert got[0]["address"] == "127.0.0.1"
    assert requests.get(controller.api_url + "/api/v1/audit", headers=leader,
                        timeout=10).status_code == 403
    db = sqlite3.connect(controller.db_path)
    for sql in ("UPDATE audit_log SET user = 'someone'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()



def test_audit_log_is_bounded_anonymous_floods_and_entries_past_retention(controller):
    """Someone on the LAN posting without a token cannot fill the disk through the log:
    60 anonymous entries a minute per address are written, the rest counted; entries past
    their retention may be deleted (and are, by the sweeper), younger ones never."""
    from controller.access import audit
    http = requests.Session()
    for _ in range(100):
        assert http.post(controller.api_url + "/api/v1/devices", json={},
                         timeout=10).status_code == 401
    wait_for(lambda: controller.metrics.snapshot()["counts"].get("audit_suppressed") == 40)
    count = "SELECT count(*) FROM audit_log WHERE user IS NULL"
    wait_for(lambda: controller.reader().execute(count).fetchone() == (60,))
    now = time.time()
    old = [(now - 91 * 86400, None), (now - 731 * 86400, "lan"), (now - 100 * 86400, "lan")]
    controller.writer.call(lambda db: db.conn.executemany(
        "INSERT INTO audit_log (at, user, method, path, status) VALUES (?, ?, 'PUT', '/x', 200)",
        old))
    assert controller.writer.call(audit.prune) == 2
    assert controller.reader().execute(
        "SELECT count(*) FROM audit_log WHERE at < ?", (now - 86400,)).fetchone() == (1,)
    db = sqlite3.connect(controller.db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log WHERE at < ?", (now - 86400,))
    db.close()

def test_user_added_from_the_cli_signs_in_with_its_password_only(tmp_path):
    data = tmp_path / "data"
    secret = tmp_path / "pw"
    secret.write_text("mật-khẩu-dài-đủ\n")
    assert controller_main(["--data", str(data), "user", "add", "chu-tich", "--role", "leader",
                            "--password-file", str(secret)]) == 0
    with pytest.raises(SystemExit):
        controller_main(["--data", str(data), "user", "add", "x", "--role", "boss",
                         "--no-password"])
    from controller.db.writer import open_writer
    with open_writer(data / "controller.db") as writer:
        caller = users.check_password(writer.db, "chu-tich", "mật-khẩu-dài-đủ")
        assert (caller.name, caller.role) == ("chu-tich", "leader")
        with pytest.raises(Unauthorized, match="wrong user name or password"):
            users.check_password(writer.db, "chu-tich", "mật-khẩu-sai-rồi")
        stored = writer.db.execute("SELECT password FROM users").fetchone()[0]
        assert stored.startswith("$argon2") and "mật" not in stored
        token = writer.call(lambda db: tokens.create_token(db, "chu-tich"))
        assert tokens.check_token(writer.db, f"Bearer {token}").role == "leader"


@pytest.fixture
def leader_user(controller):
    controller.writer.call(lambda db: users.add_user(db, "lanh-dao", LEADER,
                                                     "mật-khẩu-đủ-dài"))
    return "lanh-dao"


def sign_in(controller, name, password):
    return requests.post(controller.api_url + "/api/v1/session",
                         json={"name": name, "password": password}, timeout=10)


def test_leader_signs_in_uses_the_cookie_with_csrf_and_signs_out(controller, leader_user):
    resp = sign_in(controller, leader_user, "mật-khẩu-đủ-dài")
    assert resp.status_code == 200 and resp.json()["role"] == LEADER
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    browser = requests.Session()
    browser.cookies.update(resp.cookies)
    url = controller.api_url + "/api/v1"
    assert browser.get(url + "/ratings", timeout=10).status_code == 200
    assert browser.get(url + "/devices/x/config", timeout=10).status_code == 403  # role
    forged = browser.put(url + "/alerts/rules", json={"min_answers": 5}, timeout=10)
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]
    csrf = {"X-CSRF-Token": resp.json()["csrf"]}
    assert browser.put(url + "/alerts/rules", json={"min_answers": 5}, headers=csrf,
                       timeout=10).status_code == 200
    assert browser.delete(url + "/session", headers=csrf, timeout=10).status_code == 200
    assert browser.get(url + "/ratings", timeout=10).status_code == 401
    again = requests.get(url + "/ratings", cookies=resp.cookies, timeout=10)
    assert again.status_code == 401  # the old cookie is dead, not just forgotten


def test_sign_in_locks_after_five_wrong_passwords(controller, leader_user):
    for _ in range(5):
        assert sign_in(controller, leader_user, "sai-mật-khẩu-rồi").status_code == 401
    locked = sign_in(controller, leader_user, "mật-khẩu-đủ-dài")
    assert locked.status_code == 503 and int(locked.headers["Retry-After"]) > 0
    assert "too many wrong passwords" in locked.json()["error"]
    assert requests.get(controller.api_url + "/api/v1/ratings", timeout=10).status_code == 401


def test_idle_session_expires(controller, leader_user):
    resp = sign_in(controller, leader_user, "mật-khẩu-đủ-dài")
    controller.sessions.idle_s = 0.5
    import time
    time.sleep(1.0)
    expired = requests.get(controller.api_url + "/api/v1/ratings", cookies=resp.cookies,
                           timeout=10)
    assert expired.status_code == 401 and "expired" in expired.json()["error_en"]
    assert expired.json()["error"] == "Phiên làm việc đã hết hạn: vui lòng đăng nhập lại"
