"""A node's storage faults: a corrupt node.db is set aside and a fresh one started (not a
crash loop), reported in telemetry and as an event; the controller finds gaps and resets
in each device's event numbering and shows them."""

from __future__ import annotations

import time

import requests

from conftest import wait_for
from controller.access.tokens import create_token
from controller.fleet.sequence import GAP_GRACE_S
from node_runtime.node import Node


def test_a_corrupt_node_db_is_set_aside_reported_and_the_numbering_reset_is_shown(
        tmp_path, controller, make_node):
    node = make_node("kiosk-db1", controller=controller)
    for n in range(3):
        node.emit("note", {"n": n})
    wait_for(lambda: node.outbox.depth == 0, timeout=15)
    config = node.config
    node.close()
    db = config.data_dir / "node.db"
    for part in (db, db.with_name("node.db-wal"), db.with_name("node.db-shm")):
        if part.exists() and part != db:
            part.unlink()
    db.write_bytes(b"\x00garbage, not SQLite" * 200)  # a card's sector gone bad

    with Node(config) as again:
        assert again.storage_reset and "set aside as node.db.corrupt-" in again.storage_reset
        assert list(config.data_dir.glob("node.db.corrupt-*"))
        again.start()
        assert again.telemetry()["storage_reset"] == again.storage_reset
        again.emit("note", {"n": 3})
        wait_for(lambda: again.outbox.depth == 0, timeout=15)
    token = controller.writer.call(lambda db: create_token(db, "kythuat"))
    found = wait_for(lambda: requests.get(
        controller.api_url + "/api/v1/events/sequence-anomalies?device=kiosk-db1",
        headers={"Authorization": f"Bearer {token}"}, timeout=10).json())
    assert found[0]["kind"] == "reset" and found[0]["last_seq"] == 3
    assert found[0]["detail"] == "storage_reset event"
    page = requests.get(controller.api_url + "/devices/kiosk-db1", timeout=10,
                        headers={"Authorization": f"Bearer {token}"})
    assert "restarted from 1" in page.text or "đánh số lại từ 1" in page.text


def test_gaps_are_kept_only_for_events_that_never_came(controller):
    seqs = controller.sequences
    seqs.observe([("kiosk-g1", 1, "note"), ("kiosk-g1", 2, "note"), ("kiosk-g1", 6, "note")])
    seqs.observe([("kiosk-g2", 1, "note"), ("kiosk-g2", 4, "note")])
    # kiosk-g2's 2 and 3 were only late (the outbox's window lets them pass a later one).
    controller.registry.add("kiosk-g2", "kiosk")
    controller.writer.call(lambda db: [db.execute(
        "INSERT INTO events (id, device, seq, type, ts, clock_synced, received, data)"
        " VALUES (?, 'kiosk-g2', ?, 'note', '2026-01-01T00:00:00Z', 1, 0, '{}')",
        (f"late-{n}", n)) for n in (2, 3)])
    seqs.sweep(now=time.time() + GAP_GRACE_S + 1)
    rows = controller.writer.call(lambda db: db.execute(
        "SELECT device, kind, first_seq, last_seq, missing FROM sequence_anomalies").fetchall())
    assert rows == [("kiosk-g1", "gap", 3, 5, 3)]
