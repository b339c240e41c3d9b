"""Events travel node -> broker -> controller database -> ack -> out of the outbox."""

from __future__ import annotations

import sqlite3

from conftest import wait_for


def stored(controller, device_id: str) -> list[tuple[str, int]]:
    return controller.reader().execute(
        "SELECT id, seq FROM events WHERE device = ? ORDER BY seq", (device_id,)).fetchall()


def test_event_is_stored_acked_and_leaves_the_outbox(controller, make_node):
    node = make_node("kiosk-01", controller=controller)
    event = node.emit("rating", {"level": 1, "scale": 4})
    wait_for(lambda: node.outbox.depth == 0)
    assert stored(controller, "kiosk-01") == [(event["id"], 1)]
    rating = controller.reader().execute("SELECT level, scale FROM ratings").fetchone()
    assert rating == (1, 4)


def test_events_are_delivered_in_order_with_increasing_seq(controller, make_node):
    node = make_node("kiosk-02", controller=controller, outbox_window=5)
    ids = [node.emit("rating", {"level": 2, "scale": 4})["id"] for _ in range(40)]
    wait_for(lambda: node.outbox.depth == 0)
    rows = stored(controller, "kiosk-02")
    assert [r[0] for r in rows] == ids
    assert [r[1] for r in rows] == list(range(1, 41))


def test_seq_survives_restart(tmp_path, controller, make_node):
    node = make_node("kiosk-03", controller=controller, start=False)
    node.emit("rating", {"level": 1, "scale": 4})
    node.close()
    again = make_node("kiosk-03", controller=controller, start=False)
    assert again.emit("rating", {"level": 1, "scale": 4})["seq"] == 2


def test_event_is_on_disk_before_emit_returns(controller, make_node):
    node = make_node("kiosk-04", start=False)
    event = node.emit("rating", {"level": 3, "scale": 4})
    # A second, independent connection sees it: it is committed, not in a buffer.
    path = node.config.data_dir / "node.db"
    row = sqlite3.connect(path).execute("SELECT id FROM outbox").fetchone()
    assert row == (event["id"],)


def test_controller_stopped_node_keeps_events_and_delivers_later(make_controller, make_node):
    ctl = make_controller()
    node = make_node("kiosk-05", controller=ctl)
    ctl.close()
    ids = [node.emit("rating", {"level": 4, "scale": 4})["id"] for _ in range(25)]
    assert node.outbox.depth == 25
    ctl = make_controller()
    wait_for(lambda: node.outbox.depth == 0, timeout=20)
    assert [r[0] for r in stored(ctl, "kiosk-05")] == ids


def test_node_speaking_mqtt_311_delivers_too(controller, make_node, tmp_path, broker):
    import dataclasses

    from conftest import node_config
    from node_runtime.node import Node
    broker.add_device("kiosk-06")
    controller.registry.add("kiosk-06", "kiosk")
    config = node_config(tmp_path, broker, "kiosk-06")
    config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, protocol=4))
    with Node(config) as node:
        node.start()
        node.emit("rating", {"level": 2, "scale": 4})
        wait_for(lambda: node.outbox.depth == 0)
