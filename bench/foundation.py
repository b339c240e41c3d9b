"""Benchmarks of issue #2: ingestion throughput, latency, node memory, offline detection,
and the outbox with three days of backlog."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.rig import PASSWORD, Rig
from node_runtime.node import Node
from node_runtime.outbox import Outbox
from wire import messages
from wire.messages import encode, new_event
from wire.topics import Topic

Figure = tuple[str, float, str, str]  # name, value, unit, goal


def _event_size() -> int:
    event = new_event("bench-node-01", 1, "rating", {"level": 1, "scale": 4}, clock_synced=True)
    return len(encode(Topic.EVENTS, event))


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def raw_throughput(total: int, clients: int, processes: int, window: int) -> float:
    """Messages per second a paho QoS 1 subscriber receives from paho publishers."""
    with Rig([]) as rig:
        rig.start(controller=False)
        sub = rig.spawn([sys.executable, "-m", "bench.workers", "subscribe",
                         json.dumps({"port": rig.port, "password": PASSWORD, "total": total})],
                        stdout=subprocess.PIPE, text=True)
        sub.stdout.readline()  # ready
        per_client = total // clients
        pubs = [rig.spawn([sys.executable, "-m", "bench.workers", "publish", json.dumps({
            "id": p, "port": rig.port, "password": PASSWORD, "size": _event_size(),
            "clients": clients // processes, "count": per_client, "window": window})])
            for p in range(processes)]
        for p in pubs:
            p.wait()
        result = json.loads(sub.stdout.readline())
        return result["n"] / (result["last"] - result["first"])


@contextlib.contextmanager
def _clock_over_days(days: float, count: int) -> Iterator[None]:
    """Stamp the next ``count`` events as taken evenly over the last ``days``, as a
    kiosk offline that long stamped them. Stamped all at once, each desk's 15-minute
    alert window (controller.alerts) would hold thousands of ratings, which no desk
    ever gets."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    step = dt.timedelta(days=days) / count
    ticks = itertools.count()
    real = messages.utc_now
    messages.utc_now = lambda: start + step * next(ticks)
    try:
        yield
    finally:
        messages.utc_now = real


def ingestion_throughput(total: int, nodes: int, processes: int, window: int) -> float:
    """Events per second from prefilled node outboxes into the controller's DB, acked."""
    devices = [(f"bench-node-{i:02d}", "kiosk") for i in range(1, nodes + 1)]
    with Rig(devices) as rig:
        rig.start()
        raws = [rig.node_raw(d, outbox_window=window) for d, _ in devices]
        per_node = total // nodes
        for raw in raws:  # three days of ratings, accepted while offline
            node = Node(rig.node_config(raw["device"]["id"], outbox_window=window))
            with _clock_over_days(3, per_node):
                node.outbox.put_many(("rating", {"level": 1 + i % 4, "scale": 4})
                                     for i in range(per_node))
            node.outbox.close()
        workers = [rig.spawn([sys.executable, "-m", "bench.workers", "nodes",
                              json.dumps({"configs": part})], stdout=subprocess.PIPE, text=True)
                   for part in _split(raws, processes)]
        done = max(json.loads(w.stdout.readline())["done"] for w in workers)
        db = rig.dir / "controller" / "controller.db"
        import sqlite3
        first, count = sqlite3.connect(db).execute(
            "SELECT min(received), count(*) FROM events").fetchone()
        if count != per_node * nodes:
            raise RuntimeError(f"controller stored {count} events, expected {per_node * nodes}")
        return count / (done - first)


def latency_p99(rate: float, seconds: float) -> tuple[float, float]:
    """Emit at ``rate``/s; p50 and p99 ms from ``emit`` to the controller's ack arriving."""
    with Rig([("bench-lat", "kiosk")]) as rig:
        rig.start()
        node = Node(rig.node_config("bench-lat"))
        sent: dict[str, float] = {}
        acked: dict[str, float] = {}
        original = node.delivery.acknowledged

        def record(ids: list[str]) -> None:
            now = time.perf_counter()
            for i in ids:
                acked.setdefault(i, now)
            original(ids)

        node.delivery.acknowledged = record  # type: ignore[method-assign]
        node.start()
        while not node.online:
            time.sleep(0.01)
        time.sleep(0.5)
        n = int(rate * seconds)
        start = time.perf_counter()
        for i in range(n):
            target = start + i / rate
            time.sleep(max(0.0, target - time.perf_counter()))
            t0 = time.perf_counter()
            sent[node.emit("rating", {"level": 1, "scale": 4})["id"]] = t0
        deadline = time.monotonic() + 30
        while len(acked) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        node.close()
        ms = sorted((acked[i] - t) * 1000 for i, t in sent.items() if i in acked)
        if len(ms) < n:
            raise RuntimeError(f"only {len(ms)} of {n} events acked")
        return statistics.median(ms), ms[int(0.99 * (len(ms) - 1))]


def node_memory() -> float:
    """Resident memory (MB) of one idle, connected node runtime process."""
    with Rig([("bench-mem", "kiosk")]) as rig:
        rig.start()
        proc = rig.spawn([sys.executable, "-m", "bench.workers", "bare",
                          json.dumps({"config": rig.node_raw("bench-mem")})],
                         stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        time.sleep(3)
        status = open(f"/proc/{proc.pid}/status").read()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024


def import_floor() -> float:
    """RSS (MB) of a process that only imports Python, paho-mqtt and the node's SQLite
    opener (``node_runtime.storage``: plain sqlite3)."""
    code = ("import paho.mqtt.client, node_runtime.storage;"
            "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout) / 1024


def offline_detection(keepalive: int = 4) -> float:
    """Seconds from a node going silent to the API showing it offline.

    SIGSTOP freezes the node with its TCP connection open, as a cut cable or a
    dead Wi-Fi link would: only the missing keepalive tells the broker.
    """
    with Rig([("bench-off", "kiosk")]) as rig:
        rig.start()
        proc = rig.spawn([sys.executable, "-m", "bench.workers", "bare", json.dumps(
            {"config": rig.node_raw("bench-off", keepalive=keepalive)})],
            stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        while not rig.api("/api/v1/devices/bench-off")["online"]:
            time.sleep(0.05)
        proc.send_signal(signal.SIGSTOP)
        killed = time.monotonic()
        while rig.api("/api/v1/devices/bench-off")["online"]:
            time.sleep(0.05)
        elapsed = time.monotonic() - killed
        proc.kill()
        return elapsed


def outbox_backlog(backlog: int = 30_000, samples: int = 200) -> tuple[float, float]:
    """p95 ms of ``put`` on an empty outbox and on one holding ``backlog`` events."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        def p95(outbox: Outbox) -> float:
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                outbox.put("rating", {"level": 1, "scale": 4})
                times.append((time.perf_counter() - t0) * 1000)
            return sorted(times)[int(0.95 * (samples - 1))]

        with Outbox(f"{tmp}/empty.db", "bench-a") as empty:
            empty_p95 = p95(empty)
        with Outbox(f"{tmp}/full.db", "bench-b") as full:
            full.put_many(("rating", {"level": 1, "scale": 4}) for _ in range(backlog))
            full_p95 = p95(full)
        return empty_p95, full_p95


def run(quick: bool = False) -> list[tuple[str, float, str, str, str]]:
    """All figures: (name, value, unit, goal, what it is measured against)."""
    total = 20_000 if quick else 100_000
    raw = raw_throughput(total, clients=20, processes=2, window=100)
    ingest = ingestion_throughput(total, nodes=20, processes=2, window=100)
    p50, p99 = latency_p99(100, 5 if quick else 10)
    rss = node_memory()
    floor = import_floor()
    keepalive = 10
    offline = offline_detection(keepalive)
    empty_p95, full_p95 = outbox_backlog()
    return [
        ("raw_broker_qos1_throughput", round(raw), "msg/s", "-", "baseline"),
        ("ingestion_throughput", round(ingest), "events/s", "-", f"{total} events, 20 nodes"),
        ("ingestion_vs_raw_broker", round(ingest / raw, 3), "ratio", ">= 0.5",
         "ingestion / raw broker QoS 1, same message size, same run"),
        ("event_latency_p50", round(p50, 2), "ms", "-", "emit -> ack at the node, 100 events/s"),
        ("event_latency_p99", round(p99, 2), "ms", "<= 50", "emit -> ack at the node, 100/s"),
        ("node_runtime_rss", round(rss, 1), "MB", "<= 30", "idle connected node process"),
        ("node_import_floor_rss", round(floor, 1), "MB", "-",
         "baseline: interpreter + paho-mqtt + sqlite3 imported, nothing else"),
        ("offline_detection", round(offline, 2), "s", f"<= {1.5 * keepalive}",
         f"keepalive {keepalive} s; link frozen (SIGSTOP) -> API shows offline"),
        ("offline_detection_vs_keepalive", round(offline / keepalive, 2), "ratio", "<= 1.5",
         "detection time / keepalive (frozen just after a heartbeat: the worst case)"),
        ("outbox_put_p95_empty", round(empty_p95, 3), "ms", "-", "baseline: empty outbox"),
        ("outbox_put_p95_30k_backlog", round(full_p95, 3), "ms", "-", "30,000 events queued"),
        ("outbox_backlog_slowdown", round(full_p95 / empty_p95, 3), "ratio", "<= 1.5",
         "put p95 with 30k queued / empty"),
    ]
