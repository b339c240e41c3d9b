"""Loudspeaker benchmarks: start-time error, start spread, emergency fan-out, node memory.

``run(quick)`` returns ``(name, value, unit, goal, note)`` rows for ``make bench``;
``python -m bench.speaker [NODES]`` prints them as ``BENCH`` lines. Everything is
real: Mosquitto, the controller, speaker nodes with the real runtime writing through PyAudio into
ALSA ``file`` PCMs over ``null`` (set up here in a temporary folder).
Times are the nodes' own: a receipt's ``started`` is taken right after the
node's precise wait for the scheduled instant, before the first write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np

from controller.access import tokens as auth
from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port
from node_runtime.config import MqttSettings, NodeConfig
from node_runtime.node import Node
from speaker_node.cli import build
from wire.messages import parse_ts

PASSWORD = "bench-password"
TZ_NAME = "Asia/Ho_Chi_Minh"


class Rig:
    """Broker, controller and ``n`` speaker nodes in this process."""

    def __init__(self, folder: pathlib.Path, pcms: int):
        self.folder = folder
        lines = ["</usr/share/alsa/alsa.conf>"] + [
            f'pcm.bench_{n} {{ type file; slave.pcm "null"; file "/dev/null"; format "raw" }}'
            for n in range(pcms)]
        (folder / "asound.conf").write_text("\n".join(lines) + "\n")
        os.environ["ALSA_CONFIG_PATH"] = str(folder / "asound.conf")
        self.broker_config = BrokerConfig(folder / "broker", port=free_port())
        self.broker_config.set_user(CONTROLLER_USER, PASSWORD)
        self.broker = Mosquitto(self.broker_config)
        self.broker.start()
        # Imported here: the worker processes run speaker nodes only, and must not pay
        # for the controller's web stack (FastAPI, pydantic) at start.
        from controller.service import Controller
        self.ctl = Controller(folder / "controller.db", self._mqtt(CONTROLLER_USER), http_port=0,
                              broker_passwd=self.broker_config.passwd)
        self.ctl.start()
        now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)
        self.ctl.broadcasts.quiet_hours = (((now + dt.timedelta(hours=8)).time()).replace(
            second=0, microsecond=0), ((now + dt.timedelta(hours=9)).time()).replace(
            second=0, microsecond=0))
        self.token = self.ctl.writer.call(lambda db: auth.create_token(db, "bench"))
        self.nodes: list[tuple[Node, Any]] = []

    def _mqtt(self, user: str) -> MqttSettings:
        return MqttSettings(port=self.broker_config.port, username=user, password=PASSWORD,
                            keepalive=30, reconnect_min=0.2, reconnect_max=2.0)

    def add_speakers(self, count: int) -> list[Any]:
        for n in range(count):
            self.broker_config.set_user(f"bench-spk-{n}", PASSWORD)
        self.broker.reload()
        time.sleep(0.3)
        for n in range(count):
            device = f"bench-spk-{n}"
            self.ctl.registry.add(device, "speaker", hamlet=f"hamlet-{n % 10}")
            config = NodeConfig(
                device_id=device, role="speaker", data_dir=self.folder / "nodes" / device,
                mqtt=self._mqtt(device), clock_check="always", telemetry_interval=600,
                status_port=0,
                role_settings={"controller_url": self.ctl.api_url,
                               "output_device": f"bench_{n}", "amp_lead_s": 1.0,
                               "amp_tail_s": 0.5})
            node = Node(config)
            speaker = build(node)
            node.start()
            self.nodes.append((node, speaker))
        deadline = time.monotonic() + 30 + count
        while not all(node.online for node, _ in self.nodes):
            if time.monotonic() > deadline:
                online = sum(node.online for node, _ in self.nodes)
                raise RuntimeError(f"only {online} of {count} speakers connected")
            time.sleep(0.05)
        return [s for _, s in self.nodes]

    def audio(self, seconds: float) -> dict[str, Any]:
        rng = np.random.default_rng(7)
        x = rng.standard_normal(int(seconds * 48000)) * 0.05
        pcm = (x * 32767).astype("<i2")
        path = self.folder / f"bench-{seconds}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(48000)
            w.writeframes(pcm.tobytes())
        return self.ctl.audio_library.add(path.read_bytes(), f"bench {seconds} s")

    def close(self) -> None:
        for node, speaker in self.nodes:
            speaker.close()
            node.close()
        self.ctl.close()
        self.broker.stop()


@contextlib.contextmanager
def rig(pcms: int) -> Iterator[Rig]:
    with tempfile.TemporaryDirectory(prefix="bench-speaker-") as tmp:
        old = os.environ.get("ALSA_CONFIG_PATH")
        r = Rig(pathlib.Path(tmp), pcms)
        try:
            yield r
        finally:
            r.close()
            if old is None:
                os.environ.pop("ALSA_CONFIG_PATH", None)
            else:
                os.environ["ALSA_CONFIG_PATH"] = old


def _local(when: dt.datetime) -> str:
    return (when + dt.timedelta(hours=7)).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _receipts(r: Rig, broadcast_id: int, expect: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = r.ctl.reader().execute(
            "SELECT status, scheduled, started FROM playback_receipts WHERE broadcast_id = ?",
            (broadcast_id,)).fetchall()
        if len(rows) >= expect:
            return [{"status": s, "scheduled": sc, "started": st} for s, sc, st in rows]
        time.sleep(0.1)
    raise RuntimeError(f"only some receipts for broadcast {broadcast_id} within {timeout} s")


def start_error(items: int = 12) -> list[tuple[str, float, str]]:
    """One node, ``items`` short items 2 s apart: |started − scheduled|."""
    with rig(1) as r:
        r.add_speakers(1)
        audio = r.audio(0.5)
        first = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
        ids = [r.ctl.broadcasts.create({"audio_id": audio["id"], "start": _local(
            first + dt.timedelta(seconds=2 * k)), "overlap": "order"})["id"]
            for k in range(items)]
        errors = []
        for bid in ids:
            (rec,) = _receipts(r, bid, 1)
            errors.append(abs((parse_ts(rec["started"]) - parse_ts(rec["scheduled"]))
                              .total_seconds()) * 1000)
    errors.sort()
    p99 = errors[min(len(errors) - 1, int(round(0.99 * (len(errors) - 1))))]
    return [("speaker_start_error_p99", round(p99, 2), "ms"),
            ("speaker_start_error_median", round(statistics.median(errors), 2), "ms")]


def start_spread(nodes: int = 10) -> list[tuple[str, float, str]]:
    """``nodes`` speakers, one item: max − min of their actual starts."""
    with rig(nodes) as r:
        r.add_speakers(nodes)
        audio = r.audio(1.0)
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
        bid = r.ctl.broadcasts.create({"audio_id": audio["id"], "start": _local(start)})["id"]
        starts = sorted(parse_ts(x["started"]).timestamp() for x in _receipts(r, bid, nodes))
    return [(f"speaker_start_spread_{nodes}_nodes", round((starts[-1] - starts[0]) * 1000, 2),
             "ms")]


def emergency_fanout(nodes: int = 200, per_process: int = 10,
                     runs: int = 5) -> list[tuple[str, float, str]]:
    """API call → every node has the emergency under way (relay on), and → every node
    writing sound (the attention tone's first samples: what a hamlet hears), over
    ``runs`` emergencies one after another; the p99 over runs and nodes. Nodes run in
    worker processes of ``per_process`` each: on the Pis each is a process of its own;
    packed by the hundred, paho's ``select`` cannot watch sockets numbered past 1024 and
    each node's threads queue for one GIL behind the others'."""
    import json
    with rig(1) as r:
        audio = r.audio(1.0)
        names = [f"bench-spk-{n}" for n in range(nodes)]
        for n, name in enumerate(names):
            r.broker_config.set_user(name, PASSWORD)
            r.ctl.registry.add(name, "speaker", hamlet=f"hamlet-{n % 10}")
        r.broker.reload()
        time.sleep(0.5)
        lines = ["</usr/share/alsa/alsa.conf>"] + [
            f'pcm.fan_{n} {{ type file; slave.pcm "null"; file "/dev/null"; format "raw" }}'
            for n in range(nodes)]
        (r.folder / "fan.conf").write_text("\n".join(lines) + "\n")
        env = {**os.environ, "ALSA_CONFIG_PATH": str(r.folder / "fan.conf")}
        workers = []
        for first in range(0, nodes, per_process):
            spec = {"port": r.broker_config.port, "url": r.ctl.api_url,
                    "folder": str(r.folder), "first": first,
                    "names": names[first:first + per_process], "sha": audio["sha256"],
                    "bytes": audio["bytes"]}
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "bench.speaker", "--worker", json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=env, text=True))
        api, delivered, engaged, sounding = [], [], [], []
        try:
            for run in range(runs):
                for w in workers:
                    if w.stdout is None or w.stdout.readline().strip() != "READY":
                        raise RuntimeError("a bench worker failed to start its speakers")
                if run:  # the last one's cancellation, receipts and acks settle first
                    time.sleep(5)
                for w in workers:
                    assert w.stdin is not None
                    w.stdin.write("GO\n")
                    w.stdin.flush()
                t0 = time.time()
                made = r.ctl.broadcasts.emergency({"audio_id": audio["id"], "lead_s": 0.0})
                api.append(time.time() - t0)
                for w in workers:
                    assert w.stdout is not None
                    result = json.loads(w.stdout.readline())
                    if None in result["sounding"]:
                        raise RuntimeError("a node did not sound within 30 s")
                    delivered += [t - t0 for t in result["delivered"] if t is not None]
                    engaged += [t - t0 for t in result["engaged"]]
                    sounding += [t - t0 for t in result["sounding"]]
                got = sorted(delivered[-nodes:])
                print("delivered deciles " + " ".join(f"{got[int(q * (len(got) - 1))]:.3f}"
                      for q in (0, .1, .25, .5, .75, .9, 1)), file=sys.stderr)
                print(f"emergency run {run + 1}: API {api[-1]:.3f} s, last delivery "
                      f"{max(delivered[-nodes:]):.3f} s, last relay {max(engaged[-nodes:]):.3f} s, "
                      f"last sound {max(sounding[-nodes:]):.3f} s", file=sys.stderr)
                r.ctl.broadcasts.cancel(made["id"])  # one emergency at a time: the next run
        finally:
            for w in workers:
                if w.stdin:
                    w.stdin.close()
            for w in workers:
                w.wait(timeout=60)
    return [(f"emergency_api_call_{nodes}_nodes", round(max(api), 3), "s"),
            (f"emergency_fanout_{nodes}_nodes_delivered", round(_p99(delivered), 3), "s"),
            (f"emergency_fanout_{nodes}_nodes_relay_on", round(_p99(engaged), 3), "s"),
            (f"emergency_fanout_{nodes}_nodes_relay_on_median",
             round(statistics.median(engaged), 3), "s"),
            (f"emergency_fanout_{nodes}_nodes_sounding", round(_p99(sounding), 3), "s")]


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _worker(spec: dict[str, Any]) -> None:
    """Run some speaker nodes; for each "GO" on stdin, report when each received the
    config message, closed its relay and wrote its first sound (wall time), then wait for
    them all to go quiet and say READY again. The times are taken by hooks on the config
    handler, the amplifier and the sound output, not by polling: a poll every few
    milliseconds in twenty processes would itself take the CPU the nodes need."""
    import json
    folder = pathlib.Path(spec["folder"])
    delivered: dict[str, float] = {}
    engaged: dict[str, float] = {}
    sounding: dict[str, float] = {}
    received = Node._config_received

    def note_arrival(self: Node, topic: str, payload: bytes) -> None:
        delivered[self.device_id] = time.time()
        received(self, topic, payload)

    def hooked(name: str, marks: dict[str, float], call: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = call(*args, **kwargs)
            marks.setdefault(name, time.time())
            return result
        return wrapper

    Node._config_received = note_arrival  # type: ignore[method-assign]
    pairs = []
    for n, name in enumerate(spec["names"]):
        config = NodeConfig(
            device_id=name, role="speaker", data_dir=folder / "nodes" / name,
            mqtt=MqttSettings(port=spec["port"], username=name, password=PASSWORD,
                              keepalive=30, reconnect_min=0.2, reconnect_max=2.0),
            clock_check="always", telemetry_interval=600, status_port=0,
            role_settings={"controller_url": spec["url"], "output_device":
                           f"fan_{spec['first'] + n}", "amp_lead_s": 1.0, "amp_tail_s": 0.5})
        node = Node(config)
        speaker = build(node)
        speaker.amplifier.on = hooked(name, engaged, speaker.amplifier.on)
        speaker.output.write = hooked(name, sounding, speaker.output.write)
        node.start()
        speaker.cache.fetch(spec["sha"], spec["bytes"])  # cached before the storm, as in service
        pairs.append((node, speaker))
    while not all(node.online for node, _ in pairs):
        time.sleep(0.05)
    print("READY", flush=True)
    names = [node.device_id for node, _ in pairs]
    for line in sys.stdin:
        if line.strip() != "GO":
            break
        for marks in (delivered, engaged, sounding):
            marks.clear()
        deadline = time.monotonic() + 30
        while len(sounding) < len(pairs) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(json.dumps({"delivered": [delivered.get(n) for n in names],
                          "engaged": [engaged.get(n) for n in names],
                          "sounding": [sounding.get(n) for n in names]}), flush=True)
        quiet = time.monotonic() + 60
        while time.monotonic() < quiet and any(s._playing or s.amplifier.is_on
                                                for _, s in pairs):
            time.sleep(0.05)
        print("READY", flush=True)
    for node, speaker in pairs:
        speaker.close()
        node.close()


def node_memory() -> list[tuple[str, float, str]]:
    """Resident memory of one ``thanthien-speaker`` process after it has played an item."""
    with rig(1) as r:
        r.broker_config.set_user("bench-mem", PASSWORD)
        r.broker.reload()
        r.ctl.registry.add("bench-mem", "speaker")
        toml = r.folder / "mem.toml"
        toml.write_text(
            f'[device]\nid = "bench-mem"\nrole = "speaker"\ndata_dir = "{r.folder}/mem"\n'
            f'[mqtt]\nport = {r.broker_config.port}\nusername = "bench-mem"\n'
            f'password = "{PASSWORD}"\n[runtime]\nclock_check = "always"\nstatus_port = 0\n'
            f'[speaker]\ncontroller_url = "{r.ctl.api_url}"\noutput_device = "bench_0"\n'
            'amp_lead_s = 1.0\n')
        proc = subprocess.Popen([sys.executable, "-m", "speaker_node.cli", "--config",
                                 str(toml), "--log-level", "WARNING"],
                                stderr=subprocess.DEVNULL)
        try:
            audio = r.audio(2.0)
            bid = r.ctl.broadcasts.create({"audio_id": audio["id"], "start": _local(
                dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4))})["id"]
            _receipts(r, bid, 1)
            status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
            rss_kb = int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS")))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return [("speaker_node_rss", round(rss_kb / 1024, 1), "MB")]


_GOALS = {
    "speaker_start_error_p99": ("<= 20", "|receipt started - scheduled|, 12 items on one node"),
    "speaker_start_error_median": ("-", "the same, median"),
    "speaker_start_spread_10_nodes": ("<= 20", "max - min of 10 nodes' starts of one item"),
    "speaker_node_rss": ("<= 40", "VmRSS of one thanthien-speaker process after playing"),
}


def _goal(name: str) -> tuple[str, str]:
    if name in _GOALS:
        return _GOALS[name]
    if name.endswith("relay_on"):
        return "-", ("emergency API call -> nodes' relays closed, p99 over the runs (3 for "
                     "one node, 5 for 200)")
    if name.endswith("sounding"):
        return "<= 1", ("emergency API call -> nodes writing sound (0.3 s emergency relay "
                        "lead), p99 over the runs (3 for one node, 5 for 200)")
    if name.endswith("delivered"):
        return "-", ("emergency API call -> the config message carrying it reaching the "
                     "nodes, p99")
    if name.endswith("median"):
        return "-", "emergency API call -> the median node's relay closed"
    return "-", "the controller's emergency call: plan, group commit, publish"


def run(quick: bool = False, fanout_nodes: int | None = None) -> list[
        tuple[str, float, str, str, str]]:
    """Every speaker figure for ``make bench``: (name, value, unit, goal, measured as)."""
    nodes = fanout_nodes or (20 if quick else 200)
    figures: list[tuple[str, float, str]] = []
    figures += start_error(4 if quick else 12)
    figures += start_spread(3 if quick else 10)
    figures += node_memory()
    figures += [(name.replace("_1_nodes", "_one_node"), value, unit)
                for name, value, unit in emergency_fanout(1, runs=3)]
    figures += emergency_fanout(nodes, runs=3 if quick else 5)
    return [(name, value, unit, *_goal(name)) for name, value, unit in figures]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        import json
        _worker(json.loads(sys.argv[2]))
        sys.exit(0)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else None
    for name, value, unit, _, _ in run(fanout_nodes=count):
        print(f"BENCH {name} {value} {unit}", flush=True)
