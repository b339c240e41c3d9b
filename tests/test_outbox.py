"""The durable outbox on its own: ordering, removal, depth, validation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from node_runtime.outbox import Outbox
from wire import MessageError


def test_outbox_keeps_order_and_depth(tmp_path):
    with Outbox(tmp_path / "o.db", "kiosk-01") as box:
        events = [box.put("rating", {"level": n, "scale": 4}) for n in (1, 2, 3)]
        assert box.depth == 3
        assert [row[0] for row in box.after(0, 10)] == [1, 2, 3]
        assert [row[1] for row in box.after(1, 10)] == [e["id"] for e in events[1:]]
        assert box.remove([events[0]["id"], "no-such-id"]) == 1
        assert box.depth == 2


def test_outbox_depth_and_sequence_survive_reopen(tmp_path):
    with Outbox(tmp_path / "o.db", "kiosk-01") as box:
        box.put_many(("rating", {"level": 1, "scale": 4}) for _ in range(50))
        first = box.after(0, 1)[0][1]
        box.remove([first])
    with Outbox(tmp_path / "o.db", "kiosk-01") as box:
        assert box.depth == 49
        assert box.put("rating", {"level": 1, "scale": 4})["seq"] == 51


def test_sequence_never_reused_after_everything_acked(tmp_path):
    with Outbox(tmp_path / "o.db", "kiosk-01") as box:
        event = box.put("rating", {"level": 1, "scale": 4})
        box.remove([event["id"]])
    with Outbox(tmp_path / "o.db", "kiosk-01") as box:
        assert box.put("rating", {"level": 1, "scale": 4})["seq"] == 2


def test_invalid_event_is_refused_and_nothing_stored(tmp_path):
    with Outbox(tmp_path / "o.db", "kiosk-01") as box:
        with pytest.raises(MessageError, match="limit"):
            box.put("note", {"text": "x" * 70_000})
        assert box.depth == 0
        assert box.put("rating", {"level": 1, "scale": 4})["seq"] == 1


def test_clock_state_is_recorded_per_event(tmp_path):
    synced = [False]
    with Outbox(tmp_path / "o.db", "kiosk-01", clock_synced=lambda: synced[0]) as box:
        assert box.put("rating", {})["clock_synced"] is False
        synced[0] = True
        assert box.put("rating", {})["clock_synced"] is True


def test_node_runtime_keeps_numpy_out_of_a_node():
    """sqlite-utils would import numpy (~11 MB of a node's memory) just because it is
    installed; the runtime hides it for that import only."""
    code = ("import sys, node_runtime.node, speaker_node.cli;"
            "assert 'numpy' not in sys.modules, 'numpy imported';"
            "import numpy; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
