"""A kiosk whose disk is full: a tap never kills the app; the screen says the rating could
not be recorded and to tell the officer; the rating (and its reasons) are held in memory
and written, in order and linked, once the disk takes them again."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest
from test_kiosk_flow import Clock, Recorder

from conftest import node_config, wait_for
from kiosk.flow import Screen
from kiosk.settings import parse_settings
from kiosk.terminal import RETRY_S, Terminal
from wire.rating import EVENT_RATING, EVENT_RATING_DETAIL


class FullDisk(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.full = True

    def emit(self, type_: str, data: dict) -> dict:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return super().emit(type_, data)


def test_held_while_full_then_written_in_order_with_the_detail_linked():
    clock, disk = Clock(), FullDisk()
    term = Terminal(disk.emit, "kiosk-full", parse_settings({}), monotonic=clock.monotonic,
                    wall=clock.now)
    assert term.press(4) is None  # "not satisfied": no exception, nothing on disk
    assert term.screen is Screen.FOLLOW_UP and term.storage_error is not None
    term.toggle_reason("waited")
    term.reasons_done()
    assert term.screen is Screen.THANKS
    clock.advance(RETRY_S + 0.1)
    term.tick()  # still full: held, retried later
    assert disk.events == [] and term.held
    disk.full = False
    clock.advance(RETRY_S + 0.1)
    term.tick()
    assert term.storage_error is None and term.held == []
    types = [t for t, _ in disk.events]
    assert types[:2] == [EVENT_RATING, EVENT_RATING_DETAIL]
    assert disk.events[1][1]["rating_id"] == "ev-1" and disk.events[1][1]["reasons"] == [
        "waited"]


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB file system, to fill: tmpfs, mounted as root (as the tests run)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_under_the_nodes_outbox(small_disk, tmp_path, broker, controller,
                                                  make_node):
    from node_runtime.node import Node
    broker.add_device("kiosk-full2")
    controller.registry.add("kiosk-full2", "kiosk")
    config = node_config(tmp_path, broker, "kiosk-full2")
    import dataclasses
    config = dataclasses.replace(config, data_dir=small_disk / "node")
    with Node(config) as node:
        node.start()
        clock = Clock()
        term = Terminal(node.emit, "kiosk-full2", parse_settings({}),
                        monotonic=clock.monotonic, wall=clock.now)
        filler = small_disk / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        pressed = 0
        for _ in range(40):  # until SQLite has no page left
            term.press(2)
            pressed += 1
            clock.advance(4)
            term.tick()
            if term.storage_error:
                break
        assert term.storage_error and term.held
        os.unlink(filler)
        clock.advance(RETRY_S + 0.1)
        term.tick()
        assert term.storage_error is None and term.held == []
        wait_for(lambda: node.outbox.depth == 0, timeout=20)
    stored = controller.reader().execute(
        "SELECT count(*) FROM ratings WHERE device = 'kiosk-full2'").fetchone()[0]
    assert stored == pressed  # none lost, none twice
