"""HTTP API benchmarks: latency and throughput against a bare uvicorn app, controller
memory when idle and while 200 clients download a 30-minute rendition.

``run(quick)`` returns ``(name, value, unit, goal, note)`` rows for ``make bench``;
``python -m bench.api [--quick]`` prints them as ``BENCH`` lines. The controller is
the real ``controller.cli serve`` process (bench.rig), with 20 kiosks and 50,000
ratings in its database. Load comes from a child process of this module
(``load``: one asyncio process, raw keep-alive HTTP/1.1 sockets), so the client
shares no interpreter with the server; the baseline is a Starlette app with one
async route under uvicorn's h11 protocol (``bare``), loaded by the same client in
the same run. No request is started after a time budget, so a stalled controller
shows as few requests, refusals and long latencies rather than a suite that never
ends. Downloads run in a child process too (``download``: threads with requests),
while this process samples the controller's VmRSS every 0.2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import json
import math
import os
import pathlib
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from typing import Any

from bench.rig import ROOT, Rig
from controller.broker import free_port
from controller.db.writer import open_writer
from controller.fleet.registry import Registry
from controller.ratings.store import store_rating
from wire.messages import json_text, new_event

KIOSKS = 20
RATINGS = 50_000
CLIENTS = 50
RATINGS_PATH = "/api/v1/ratings?limit=100"
DEVICES_PATH = "/api/v1/devices"
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)

Row = tuple[str, float, str, str, str]


# -- the controller's database ---------------------------------------------------------

def seed(db_path: pathlib.Path, kiosks: int, count: int, days: float = 30) -> None:
    """Register ``kiosks`` kiosks and store ``count`` ratings spread over ``days``, the
    way ingest does: the event row, then :func:`store_rating`, in batches."""
    devices = [f"bench-kiosk-{k:02d}" for k in range(kiosks)]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    step = dt.timedelta(days=days) / count
    with open_writer(db_path) as writer:
        registry = Registry(writer)
        for device in devices:
            registry.add(device, "kiosk")
        for first in range(0, count, 5000):
            events = [new_event(devices[i % kiosks], i // kiosks + 1, "rating",
                                {"level": 1 + i % 4, "scale": 4}, clock_synced=True,
                                when=start + step * i)
                      for i in range(first, min(count, first + 5000))]
            writer.call(functools.partial(_store, events=events))


def _store(db: Any, events: list[dict[str, Any]]) -> None:
    for event in events:
        db.execute(
            "INSERT INTO events (id, device, seq, type, ts, clock_synced, received, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event["id"], event["device"], event["seq"], event["type"], event["ts"],
             int(event["clock_synced"]), time.time(), json_text(event["data"])))
        store_rating(db, event)


# -- processes: memory, CPU, children ----------------------------------------------------

def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m bench.api MODE SPEC`` and return the JSON line it prints."""
    out = subprocess.run([sys.executable, "-m", "bench.api", mode, json.dumps(spec)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"bench.api {mode} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# -- the load generator (child process) ---------------------------------------------------

class _Connection:
    """One keep-alive HTTP/1.1 connection sending one fixed request; reopened when the
    server closes it. Written on raw asyncio streams so the client costs little CPU."""

    def __init__(self, port: int, request: bytes):
        self.port, self.request = port, request
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self) -> int:
        """Send the request and read the whole answer; its status, 0 if the connection
        dropped."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port,
                                                         limit=1 << 20)
        reader, writer = self.streams
        try:
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            if length is None:
                raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
            await reader.readexactly(int(length.group(1)))
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            return 0
        if b"\r\nconnection: close" in head.lower():
            self.close()
        return int(head[9:12])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def _phase(conns: list[_Connection], total: int,
                 budget: float) -> tuple[list[float], list[int], float]:
    """``total`` requests shared by every connection, none started after ``budget``
    seconds (a stalled server must not hang the suite): latencies (s), statuses, wall (s)."""
    remaining = [total]
    latencies: list[float] = []
    statuses: list[int] = []
    deadline = time.perf_counter() + budget

    async def client(conn: _Connection) -> None:
        while remaining[0] > 0 and time.perf_counter() < deadline:
            remaining[0] -= 1
            t0 = time.perf_counter()
            statuses.append(await conn.get())
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(conn) for conn in conns))
    return latencies, statuses, time.perf_counter() - t0


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``load`` child: warm-up, then the measured phase, on the same connections."""
    port = spec["port"]
    auth = f"Authorization: Bearer {spec['token']}\r\n" if spec.get("token") else ""
    request = (f"GET {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
               "Accept: application/json\r\n\r\n").encode()
    conns = [_Connection(port, request) for _ in range(spec["clients"])]
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        await _phase(conns, spec["warmup"], spec["budget"] / 4)
        latencies, statuses, wall = await _phase(conns, spec["total"], spec["budget"])
    finally:
        for conn in conns:
            conn.close()
    ms = sorted(x * 1000 for x in latencies)
    return {"p50": statistics.median(ms), "p99": ms[int(0.99 * (len(ms) - 1))],
            "rps": len(ms) / wall, "done": len(ms), "errors": sum(s != 200 for s in statuses),
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "client_cpu": time.process_time() - cpu0, "client_wall": time.perf_counter() - t0}


def load(port: int, path: str, total: int, *, token: str = "", warmup: int = 300,
         clients: int = CLIENTS, budget: float = 120, server_pid: int | None = None,
         ) -> dict[str, Any]:
    """Load ``path`` from a child process; p50/p99 ms, requests/s, requests done and
    refused within ``budget`` s, and the CPU share of client and server over the run
    (a client near 100 % of a core would be the bottleneck)."""
    cpu0 = cpu_s(server_pid) if server_pid else 0.0
    result = _child("load", {"port": port, "path": path, "token": token, "total": total,
                             "warmup": warmup, "clients": clients, "budget": budget})
    # Shares over warm-up and run together, as the server's CPU is read from outside.
    result["client_share"] = result["client_cpu"] / result["client_wall"]
    if server_pid:
        result["server_share"] = (cpu_s(server_pid) - cpu0) / result["client_wall"]
    return result


# -- the baseline: a bare uvicorn app --------------------------------------------------------

def _bare_serve(port: int) -> None:
    """The ``bare`` child: ``GET /ok`` answers ``{"ok": true}``, nothing else runs."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ok(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/ok", ok)])
    uvicorn.run(app, host="127.0.0.1", port=port, http="h11", log_level="warning",
                access_log=False, lifespan="off")


def bare_baseline(total: int, warmup: int) -> dict[str, Any]:
    """The same load against a one-route Starlette app under uvicorn (h11)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.api", "bare", str(port)], cwd=ROOT)
    try:
        _wait_port(port)
        return load(port, "/ok", total, warmup=warmup, server_pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- downloads --------------------------------------------------------------------------------

def write_tone(folder: pathlib.Path, seconds: int, rate: int = 48_000) -> str:
    """A 440 Hz mono 16-bit WAV of ``seconds`` written a second at a time, stored as
    ``<sha256>.wav`` in ``folder`` (as the audio library names renditions)."""
    import numpy as np
    one = (np.sin(2 * math.pi * 440 * np.arange(rate) / rate) * 8000).astype("<i2").tobytes()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".bench-tone.wav"
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.setnframes(rate * seconds)
        for _ in range(seconds):
            w.writeframes(one)
    sha = _sha256_file(tmp)
    tmp.rename(folder / f"{sha}.wav")
    return sha


def _sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download_all(spec: dict[str, Any]) -> dict[str, Any]:
    """``count`` concurrent streamed downloads, each hashed and checked (child process)."""
    import requests
    url = f"{spec['url']}/api/v1/audio/files/{spec['sha']}"
    errors: list[str] = []

    def fetch() -> None:
        try:
            with requests.Session() as session, session.get(
                    url, headers={"Authorization": f"Bearer {spec['token']}"},
                    stream=True, timeout=120) as response:
                response.raise_for_status()
                digest = hashlib.sha256()
                for chunk in response.iter_content(1 << 20):
                    digest.update(chunk)
            if digest.hexdigest() != spec["sha"]:
                errors.append("sha256 mismatch")
        except Exception as exc:  # reported to the parent, which fails the run
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=fetch) for _ in range(spec["count"])]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - t0, "errors": errors[:5],
            "failed": len(errors), "client_cpu": time.process_time()}


class RssSampler:
    """Samples a process's VmRSS every ``interval`` s on a thread until closed."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(rss_mb(self.pid))
            except OSError:  # the process is gone: the download check reports it
                return
            self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> RssSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def downloads(rig: Rig, pid: int, count: int, minutes: int) -> dict[str, Any]:
    """RSS growth (MB, peak - before), seconds and CPU shares for ``count`` concurrent
    downloads of a ``minutes``-long rendition."""
    sha = write_tone(rig.dir / "controller" / "audio", minutes * 60)
    before, cpu0 = rss_mb(pid), cpu_s(pid)
    with RssSampler(pid) as sampler:
        result = _child("download", {"url": rig.api_url, "sha": sha, "token": rig.token,
                                     "count": count})
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} of {count} downloads failed: "
                           f"{result['errors']}")
    return {"growth": max(sampler.samples) - before, "seconds": result["seconds"],
            "client_share": result["client_cpu"] / result["seconds"],
            "server_share": (cpu_s(pid) - cpu0) / result["seconds"]}


# -- the suite ------------------------------------------------------------------------------

def controller_figures(total: int, warmup: int, budget: float, count: int,
                       minutes: int) -> dict[str, Any]:
    """Start the controller on a seeded database; idle RSS, both endpoints, downloads."""
    with Rig([]) as rig:
        rig.broker.start()
        seed(rig.dir / "controller" / "controller.db", KIOSKS, RATINGS)
        rig.start_controller()
        pid = rig.children[0].pid
        port = int(rig.api_url.rsplit(":", 1)[1])
        for path in (RATINGS_PATH, DEVICES_PATH):  # warm-up, below 50 clients
            load(port, path, 100, token=rig.token, warmup=0, clients=8, budget=30)
        time.sleep(5)
        out: dict[str, Any] = {"idle_rss": rss_mb(pid)}
        for key, path in (("ratings", RATINGS_PATH), ("devices", DEVICES_PATH)):
            out[key] = load(port, path, total, token=rig.token, warmup=warmup,
                            budget=budget, server_pid=pid)
        out["downloads"] = downloads(rig, pid, count, minutes)
        return out


def _share(result: dict[str, Any]) -> str:
    return (f"client CPU {result['client_share']:.0%}, "
            f"server {result['server_share']:.0%} of a core")


def _sig(ratio: float) -> float:
    """Three significant digits: a ratio far from 1 keeps its size."""
    return float(f"{ratio:.3g}")


def _endpoint_rows(name: str, path: str, what: str, result: dict[str, Any],
                   bare: dict[str, Any], total: int, budget: float) -> list[Row]:
    """p50, p99, req/s, refused requests and the ratios to the bare app for one route."""
    how = (f"GET {path}, {what}; {result['done']} of {total} requests started within "
           f"{budget:.0f} s, after a warm-up, {CLIENTS} keep-alive clients")
    statuses = ", ".join(f"{code}: {n}" for code, n in result["statuses"].items())
    return [
        (f"api_{name}_p50", round(result["p50"], 2), "ms", "-", how),
        (f"api_{name}_p99", round(result["p99"], 2), "ms", "-", "the same load"),
        (f"api_{name}_rps", round(result["rps"], 1), "req/s", "-", _share(result)),
        (f"api_{name}_errors", result["errors"], "requests", "0",
         f"answers other than 200 (status: count {statuses}; 0 = connection dropped)"),
        (f"api_{name}_rps_vs_bare", _sig(result["rps"] / bare["rps"]), "ratio", "-",
         "controller req/s / bare uvicorn req/s, same client, same run"),
        (f"api_{name}_p99_vs_bare", _sig(result["p99"] / bare["p99"]), "ratio", "-",
         "controller p99 / bare uvicorn p99"),
    ]


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """Make SIGTERM raise SystemExit, so the ``finally`` blocks stop every child."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(quick: bool = False) -> list[Row]:
    """Every API figure for ``make bench``: (name, value, unit, goal, measured as)."""
    total, warmup, budget = (600, 100, 30.0) if quick else (3000, 300, 90.0)
    count, minutes = (20, 2) if quick else (200, 30)
    with _exit_on_sigterm():
        bare = bare_baseline(total, warmup)
        ctl = controller_figures(total, warmup, budget, count, minutes)
    dl, got = f"download_{count}x{minutes}min", ctl["downloads"]
    return [
        ("api_bare_rps", round(bare["rps"]), "req/s", "-",
         f"baseline: one async Starlette route under uvicorn (h11), {total} requests, "
         f"{CLIENTS} keep-alive clients; {_share(bare)}"),
        ("api_bare_p99", round(bare["p99"], 2), "ms", "-", "baseline, the same load"),
        *_endpoint_rows("ratings", RATINGS_PATH, f"{RATINGS:,} ratings stored", ctl["ratings"],
                        bare, total, budget),
        *_endpoint_rows("devices", DEVICES_PATH, f"{KIOSKS} kiosks", ctl["devices"], bare,
                        total, budget),
        ("controller_idle_rss", round(ctl["idle_rss"], 1), "MB", "-",
         "VmRSS after start, 200 warm-up requests and 5 s idle"),
        (f"{dl}_rss_growth", round(got["growth"], 1), "MB", "<= 100",
         f"controller VmRSS peak (sampled every 0.2 s) - before, {count} concurrent "
         f"streamed downloads of a {minutes}-minute 48 kHz WAV, each sha256-checked"),
        (f"{dl}_seconds", round(got["seconds"], 1), "s", "-",
         f"first request -> last download complete; {_share(got)}"),
    ]


def main(argv: list[str]) -> None:
    """Child modes ``load``/``download`` SPEC and ``bare`` PORT, else the suite."""
    if argv and argv[0] == "load":
        print(json.dumps(asyncio.run(_load(json.loads(argv[1])))), flush=True)
    elif argv and argv[0] == "download":
        print(json.dumps(_download_all(json.loads(argv[1]))), flush=True)
    elif argv and argv[0] == "bare":
        _bare_serve(int(argv[1]))
    else:
        for name, value, unit, _, _ in run(quick="--quick" in argv):
            print(f"BENCH {name} {value} {unit}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
