"""Commands: run once, results reported durably, expiry honoured, desired config applied."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from test_faults import raw_client

from conftest import wait_for
from controller.fleet.commands import get_command
from controller.fleet.desired_config import get_desired
from wire.messages import encode, format_ts, utc_now
from wire.topics import Topic, device_topic


def command_status(controller, command_id: str) -> str:
    return get_command(controller.reader(), command_id)["status"]


def test_command_runs_and_reports_done_with_result(controller, make_node):
    node = make_node("kiosk-20", controller=controller)
    node.command("ping", lambda args: {"echo": args["x"]})
    wait_for(lambda: node.online)
    command = controller.commands.create("kiosk-20", "ping", {"x": 7})
    wait_for(lambda: command_status(controller, command["id"]) == "done")
    assert get_command(controller.reader(), command["id"])["result"] == {"echo": 7}


def test_unknown_and_failing_commands_are_reported(controller, make_node):
    node = make_node("kiosk-21", controller=controller)

    def broken(args):
        raise RuntimeError("amplifier relay stuck")

    node.command("amp", broken)
    wait_for(lambda: node.online)
    unknown = controller.commands.create("kiosk-21", "self-destruct")
    failing = controller.commands.create("kiosk-21", "amp")
    wait_for(lambda: command_status(controller, unknown["id"]) == "unknown")
    wait_for(lambda: command_status(controller, failing["id"]) == "failed")
    assert "amplifier relay stuck" in get_command(controller.reader(), failing["id"])["reason"]


def test_expired_command_is_not_executed_and_reported_expired(controller, make_node, broker):
    ran = []
    node = make_node("kiosk-22", controller=controller)
    node.command("restart", lambda args: ran.append(args))
    wait_for(lambda: node.online)
    # Delivered late (e.g. queued while the device was away): already past its expiry.
    command = controller.commands.create("kiosk-22", "restart", ttl_s=60)
    wait_for(lambda: command_status(controller, command["id"]) == "done")
    late = {"id": str(uuid.uuid4()), "name": "restart", "args": {"late": True},
            "expires": format_ts(utc_now() - dt.timedelta(seconds=1))}
    controller.writer.call(lambda db: db.execute(
        "INSERT INTO commands (id, device, name, args, created, expires, status, updated)"
        " VALUES (?, 'kiosk-22', 'restart', '{}', ?, ?, 'sent', ?)",
        (late["id"], time.time(), late["expires"], time.time())))
    client = raw_client(broker)
    client.publish(device_topic("kiosk-22", Topic.COMMANDS), encode(Topic.COMMANDS, late),
                   qos=1).wait_for_publish()
    wait_for(lambda: command_status(controller, late["id"]) == "expired")
    assert ran == [{}]
    client.loop_stop()
    client.disconnect()


def test_command_for_offline_device_expires_unsent(controller, make_node):
    make_node("kiosk-23", controller=controller, start=False)
    command = controller.commands.create("kiosk-23", "restart", ttl_s=0.5)
    wait_for(lambda: command_status(controller, command["id"]) == "expired")


def test_command_sent_while_offline_runs_once_device_returns(controller, make_node):
    node = make_node("kiosk-24", controller=controller, start=False)
    ran = []
    node.command("ping", lambda args: ran.append(1))
    command = controller.commands.create("kiosk-24", "ping", ttl_s=60)
    node.start()
    wait_for(lambda: command_status(controller, command["id"]) == "done")
    assert ran == [1]


def test_desired_config_is_applied_without_restart_and_reported(controller, make_node):
    node = make_node("kiosk-25", controller=controller)
    seen = []
    node.on_config(seen.append)
    wait_for(lambda: node.online)
    version = controller.desired_config.set("kiosk-25", {"idle_timeout_s": 20})
    wait_for(lambda: node.config_version == version)
    assert seen == [{"idle_timeout_s": 20}]
    wait_for(lambda: get_desired(controller.reader(), "kiosk-25")["reported_version"] == version)


def test_refused_config_keeps_running_version(controller, make_node):
    node = make_node("kiosk-26", controller=controller)

    def picky(config):
        if config.get("scale") not in (3, 4, 5):
            raise ValueError(f"scale {config.get('scale')!r}: expected 3, 4 or 5")

    node.on_config(picky)
    wait_for(lambda: node.online)
    good = controller.desired_config.set("kiosk-26", {"scale": 5})
    wait_for(lambda: node.config_version == good)
    controller.desired_config.set("kiosk-26", {"scale": 7})
    time.sleep(1.0)
    assert node.config_version == good
    wait_for(lambda: controller.reader().execute(
        "SELECT count(*) FROM events WHERE device = 'kiosk-26' AND type = 'config_applied'"
    ).fetchone()[0] == 2)
    row = controller.reader().execute(
        "SELECT data FROM events WHERE device = 'kiosk-26' AND type = 'config_applied'"
        " ORDER BY seq DESC").fetchone()
    assert "scale 7" in row[0]


def test_config_survives_node_restart_offline(controller, make_node):
    node = make_node("kiosk-27", controller=controller)
    wait_for(lambda: node.online)
    version = controller.desired_config.set("kiosk-27", {"language": "en"})
    wait_for(lambda: node.config_version == version)
    node.close()
    again = make_node("kiosk-27", start=False)
    assert (again.config_version, again.desired) == (version, {"language": "en"})


def test_a_device_reporting_another_config_version_gets_it_again_backing_off(controller):
    from controller.fleet.desired_config import DesiredConfig
    sent = []
    configs = DesiredConfig(controller.writer, lambda d, v, c: sent.append((d, v)))
    controller.registry.add("kiosk-27", "kiosk")
    configs.set("kiosk-27", {"scale": 5})
    configs.set("kiosk-27", {"scale": 4})
    controller.writer.call(lambda db: db.execute(
        "UPDATE devices SET online = 1, reported_config_version = 1 WHERE id = 'kiosk-27'"))
    sent.clear()
    assert configs.resync(now=0) == []  # just seen behind: it may still be applying it
    assert configs.resync(now=31) == ["kiosk-27"] and sent == [("kiosk-27", 2)]
    assert configs.resync(now=60) == []  # then after 60 s, 120 s...: not nonstop
    assert configs.resync(now=92) == ["kiosk-27"]
    # A device that runs a newer version than desired (the database restored from an
    # older backup) gets a desired version past its own, never an older one.
    controller.writer.call(lambda db: db.execute(
        "UPDATE devices SET reported_config_version = 9 WHERE id = 'kiosk-27'"))
    configs.resync(now=100)
    assert configs.resync(now=131) == ["kiosk-27"] and sent[-1] == ("kiosk-27", 10)
