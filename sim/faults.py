"""``make faults``: a campaign of faults against a running fleet, then the books checked.

A real Mosquitto, the controller and node processes (event nodes that stand in for
kiosks, emitting an event every few tenths of a second; real loudspeakers playing
the bulletins an operator schedules every few seconds), the devices reaching the
broker through a proxy that can cut them off. Then, at random moments, one fault
after another:

- ``broker_kill``: Mosquitto SIGKILLed, restarted a moment later;
- ``controller_kill``: the controller SIGKILLed mid-ingestion, restarted;
- ``node_kill``: an event node SIGKILLed, restarted;
- ``speaker_kill``: a loudspeaker SIGKILLed (mid-playback if it is playing), restarted;
- ``partition``: every device cut off from the broker for up to 10 minutes, time-scaled
  (``--scale``, default 0.01: 6 s at most);
- ``controller_disk_full``: the controller's database folder (its own small tmpfs, as
  root) filled to the last byte for a few seconds, then freed;
- ``controller_clock_jump``: the controller's wall clock set 1 h ahead or behind for a
  few seconds, then corrected (:mod:`sim.clockshift`; its monotonic clock, as the
  kernel's, does not jump).

After the last fault everything is healed, the nodes drain their outboxes, and the
invariants are checked: every event a node accepted (logged by the node, fsync'd, once
``emit`` returned) is stored exactly once; every bulletin that was due has one receipt
per speaker; no acknowledgement came before its commit (an acked event missing from
the database would show as lost); the controller answers its health check. The
report goes to ``docs/faults.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from controller.access import tokens as auth
from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port
from controller.db.writer import open_writer
from controller.fleet.registry import Registry
from provisioning.identity import DeviceIdentity, new_password
from provisioning.node_file import node_file_text
from sim import speakers as sim_speakers
from sim.proxy import Proxy

KINDS = ("broker_kill", "controller_kill", "node_kill", "speaker_kill", "partition",
         "controller_disk_full", "controller_clock_jump")
ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Report:
    faults: collections.Counter[str]
    accepted: int
    stored: int
    duplicated: int
    lost: int
    bulletins: int
    receipts_expected: int
    receipts_missing: int
    controller_restarts_unplanned: int
    healthy: bool
    seconds: float
    skipped_kinds: list[str]

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.receipts_missing == 0
                and self.healthy)

    def markdown(self) -> str:
        rows = "\n".join(f"| {k} | {self.faults.get(k, 0)} |" for k in KINDS)
        skipped = (f"\nNot injected in this run: {', '.join(self.skipped_kinds)}.\n"
                   if self.skipped_kinds else "")
        return f"""# Fault campaign

Written by `make faults` (`python -m sim.faults`): {sum(self.faults.values())} faults in
{self.seconds:.0f} s against the real broker, controller and node processes (see the
module's docstring for what each fault does). Result: **{"passed" if self.ok else "FAILED"}**.

| fault | count |
|---|---|
{rows}
{skipped}
| invariant | figure | goal |
|---|---|---|
| events accepted by the nodes | {self.accepted} | - |
| events stored by the controller | {self.stored} | - |
| duplicated (one node event stored twice) | {self.duplicated} | 0 |
| lost (accepted, never stored) | {self.lost} | 0 |
| bulletins due | {self.bulletins} | - |
| receipts expected (bulletins x speakers) | {self.receipts_expected} | - |
| receipts missing | {self.receipts_missing} | 0 |
| controller exits not caused by the campaign | {self.controller_restarts_unplanned} | - |
| controller healthy at the end | {"yes" if self.healthy else "no"} | yes |

An acknowledgement sent before its event was committed would show as a lost event:
the node deletes what was acknowledged, and the controller is killed often. A
bulletin asked for while the controller's clock was an hour ahead is refused (its
start is then in the past) and not counted as due.
"""


class Campaign:
    def __init__(self, folder: pathlib.Path, *, faults: int = 100, seed: int = 1,
                 nodes: int = 3, speakers: int = 2, scale: float = 0.01,
                 gap: tuple[float, float] = (0.5, 2.0)):
        self.folder = folder
        self.faults_wanted = faults
        self.rng = random.Random(seed)
        self.nodes, self.speakers_count, self.scale, self.gap = nodes, speakers, scale, gap
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.unplanned = 0
        self.bulletins: list[int] = []
        self.skipped: list[str] = []
        self.disk: pathlib.Path | None = None

    # -- setting up ---------------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(exist_ok=True)
        data = self.folder / "controller"
        data.mkdir(exist_ok=True)
        if os.geteuid() == 0:  # the controller's own small disk, to fill
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)],
                              capture_output=True).returncode == 0:
                self.disk = data
        if self.disk is None:
            self.skipped.append("controller_disk_full (needs root to mount a tmpfs)")
        self.broker_config = BrokerConfig(self.folder / "broker", port=free_port())
        password = new_password()
        self.broker_config.set_user(CONTROLLER_USER, password)
        (self.folder / "controller-password").write_text(password)
        self.node_names = [f"su-kien-{n + 1}" for n in range(self.nodes)]
        with open_writer(data / "controller.db") as writer:
            registry = Registry(writer)
            self.token = writer.call(lambda db: auth.create_token(db, "chien-dich"))
            for name in self.node_names:
                registry.add(name, "sim")
        self.mosquitto = Mosquitto(self.broker_config)
        self.mosquitto.start()
        self.proxy = Proxy(self.broker_config.port)
        url_file = self.folder / "api-url"
        self.clock_file = self.folder / "controller-clock-offset"
        self.clock_file.write_text("0\n")
        self.commands["controller"] = ([
            sys.executable, "-m", "sim.clockshift", str(self.clock_file),
            "controller.cli", "--data", str(data), "serve",
            "--mqtt-port", str(self.broker_config.port), "--mqtt-password-file",
            str(self.folder / "controller-password"), "--http-port", str(free_port()),
            "--url-file",
            str(url_file), "--broker-passwd", str(self.broker_config.passwd)], {})
        self._spawn("controller")
        self.api_url = self._wait_url(url_file)
        for name in self.node_names:
            identity = DeviceIdentity(name, "sim", new_password())
            self.broker_config.set_user(name, identity.password)
            node_file = self.folder / f"{name}.toml"
            node_file.write_text(node_file_text(
                identity, mqtt_host="127.0.0.1", mqtt_port=self.proxy.port,
                data_dir=str(self.folder / name),
                runtime={"telemetry_interval": 30, "clock_check": "always", "status_port": 0,
                         "resend_after": 3.0}))
            self.commands[name] = ([sys.executable, "-m", "sim.faults", "--node",
                                    str(node_file), "--accepted",
                                    str(self.folder / f"{name}.accepted")], {})
        conf, made = sim_speakers.provision_speakers(
            self.folder / "speakers", self.broker_config, self.api_url, self.speakers_count)
        self.speaker_names = []
        for device, hamlet, node_file in made:
            text = node_file.read_text().replace(f"port = {self.broker_config.port}",
                                                 f"port = {self.proxy.port}")
            node_file.write_text(text)
            self._api("POST", "/api/v1/devices", {"id": device, "role": "speaker",
                                                  "hamlet": hamlet})
            self.commands[device] = ([sys.executable, "-m", "speaker_node.cli", "--config",
                                      str(node_file)], {"ALSA_CONFIG_PATH": str(conf)})
            self.speaker_names.append(device)
        self.mosquitto.reload()
        time.sleep(0.3)
        for name in self.node_names + self.speaker_names:
            self._spawn(name)
        self._quiet_hours_away()
        body, content_type = sim_speakers.multipart({"title": "Bản tin thử lỗi"}, "b.wav",
                                                    sim_speakers.bulletin_wav(1.0))
        self.audio = self._api("POST", "/api/v1/audio", body, content_type=content_type)
        self._wait(lambda: all(d["online"] for d in self._api("GET", "/api/v1/devices")),
                   60, "every device online")

    # -- the campaign -------------------------------------------------------------------

    def run(self) -> Report:
        began = time.monotonic()
        next_bulletin = 0.0
        kinds = [k for k in KINDS if k != "controller_disk_full" or self.disk]
        for n in range(self.faults_wanted):
            if time.monotonic() >= next_bulletin:
                self._schedule_bulletin()
                next_bulletin = time.monotonic() + 8
            time.sleep(self.rng.uniform(*self.gap))
            kind = self.rng.choice(kinds)
            getattr(self, f"_{kind}")()
            self.counts[kind] += 1
            self._supervise()
            print(f"fault {n + 1}/{self.faults_wanted}: {kind}", flush=True)
        return self._finish(time.monotonic() - began)

    def _broker_kill(self) -> None:
        self.mosquitto.kill()
        time.sleep(self.rng.uniform(0.2, 1.5))
        self.mosquitto.start()

    def _controller_kill(self) -> None:
        self.procs["controller"].kill()
        self.procs["controller"].wait()
        time.sleep(self.rng.uniform(0.0, 1.0))
        self._spawn("controller")
        self._wait_url(self.folder / "api-url")

    def _node_kill(self) -> None:
        self._kill_and_restart(self.rng.choice(self.node_names))

    def _speaker_kill(self) -> None:
        self._kill_and_restart(self.rng.choice(self.speaker_names))

    def _partition(self) -> None:
        minutes = self.rng.uniform(0.1, 10.0)
        seconds = minutes * 60 * self.scale
        self.proxy.cut(seconds)
        time.sleep(seconds)

    def _controller_disk_full(self) -> None:
        assert self.disk is not None
        filler = self.disk / "filler"
        with open(filler, "wb", buffering=0) as f:
            for block in (1 << 20, 4096, 512):  # to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * block)
        time.sleep(self.rng.uniform(1.0, 3.0))
        filler.unlink()

    def _controller_clock_jump(self) -> None:
        self.clock_file.write_text(f"{self.rng.choice((3600, -3600))}\n")
        time.sleep(self.rng.uniform(1.0, 4.0))
        self.clock_file.write_text("0\n")

    def _kill_and_restart(self, name: str) -> None:
        proc = self.procs[name]
        proc.kill()
        proc.wait()
        time.sleep(self.rng.uniform(0.0, 1.5))
        self._spawn(name)

    def _supervise(self) -> None:
        """A process that died on its own (not by a fault) is counted and restarted."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                if name == "controller":
                    self.unplanned += 1
                self._spawn(name)
                if name == "controller":
                    self._wait_url(self.folder / "api-url")

    def _schedule_bulletin(self) -> None:
        start = time.time() + 6 + 7 * 3600  # the commune's wall time, 6 s from now
        local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
        try:
            made = self._api("POST", "/api/v1/broadcasts", {
                "audio_id": self.audio["id"], "start": local, "title": "Bản tin thử lỗi",
                "targets": {"speakers": self.speaker_names}})
            self.bulletins.append(int(made["id"]))
        except (OSError, urllib.error.HTTPError) as exc:
            print(f"bulletin not scheduled ({exc}): the controller is down", flush=True)

    # -- the books ----------------------------------------------------------------------

    def _finish(self, seconds: float) -> Report:
        self.proxy.cut(0)
        self.clock_file.write_text("0\n")
        if self.disk:
            (self.disk / "filler").unlink(missing_ok=True)
        self._supervise()
        time.sleep(15)  # the last bulletin (scheduled up to 8 s ago, 6 s lead) has played
        for name in self.node_names:  # stop emitting; what they accepted is in their logs
            self.procs[name].send_signal(signal.SIGTERM)
            self.procs[name].wait(timeout=30)
            self._spawn(name, extra=["--quiet"])
        self._wait(self._drained, 180, "every outbox drained")
        accepted: set[str] = set()
        for name in self.node_names:
            path = self.folder / f"{name}.accepted"
            if path.exists():
                accepted |= {line.split()[0] for line in path.read_text().splitlines() if line}
        db = sqlite3.connect(f"file:{self.disk or self.folder / 'controller'}/controller.db"
                             "?mode=ro", uri=True, timeout=30)
        stored_ids = {r[0] for r in db.execute(
            "SELECT id FROM events WHERE type = 'note'")}
        duplicated = db.execute(
            "SELECT count(*) - count(DISTINCT device || '/' || json_extract(data, '$.run')"
            " || '/' || json_extract(data, '$.n'))"
            " FROM events WHERE type = 'note'").fetchone()[0]
        db.close()
        expected = missing = 0
        due_before = time.time() - 20
        for bid in self.bulletins:
            for occ in self._api("GET", f"/api/v1/broadcasts/{bid}/receipts"):
                when = time.mktime(time.strptime(occ["scheduled"][:19], "%Y-%m-%dT%H:%M:%S"))
                if when - time.timezone > due_before:
                    continue
                for row in occ["speakers"]:
                    expected += 1
                    missing += row["status"] in ("no_receipt", "pending")
        try:
            healthy = bool(self._api("GET", "/api/v1/health"))
        except OSError:
            healthy = False
        return Report(self.counts, len(accepted), len(stored_ids), duplicated,
                      len(accepted - stored_ids), len(self.bulletins), expected, missing,
                      self.unplanned, healthy, seconds, self.skipped)

    def _drained(self) -> bool:
        for name in self.node_names + self.speaker_names:
            folder = (self.folder / name) if name in self.node_names else (
                self.folder / "speakers" / name)
            path = folder / "node.db"
            if not path.exists():
                continue
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
                depth = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
                db.close()
            except sqlite3.Error:
                return False
            if depth:
                return False
        return True

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with contextlib.suppress(Exception):
            self.proxy.close()
        with contextlib.suppress(Exception):
            self.mosquitto.stop()
        if self.disk:
            subprocess.run(["umount", "-l", str(self.disk)], capture_output=True)

    # -- helpers ------------------------------------------------------------------------

    def _spawn(self, name: str, extra: list[str] | None = None) -> None:
        command, env = self.commands[name]
        log = open(self.folder / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [*command, *(extra or [])], stdout=log, stderr=log, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
        log.close()

    def _wait_url(self, url_file: pathlib.Path) -> str:
        self._wait(lambda: url_file.exists() and url_file.read_text().strip(), 60,
                   "the controller's API")
        url = url_file.read_text().strip()
        self._wait(lambda: self._up(url), 60, "the controller's health")
        return url

    def _up(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/api/v1/health", timeout=2):
                return True
        except OSError:
            return False

    def _quiet_hours_away(self) -> None:
        hour = (time.gmtime().tm_hour + 7 + 12) % 24
        self._api("PUT", "/api/v1/speakers/quiet-hours",
                  {"from": f"{hour:02d}:00", "to": f"{(hour + 1) % 24:02d}:00"})

    def _api(self, method: str, path: str, body: Any = None, *,
             content_type: str = "application/json") -> Any:
        data = body if isinstance(body, bytes) else (
            None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(
            self.api_url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.load(response)

    @staticmethod
    def _wait(predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fault campaign: {what} not reached within {timeout} s")
            time.sleep(0.2)


def event_node(node_file: str, accepted: str, quiet: bool) -> None:
    """A node emitting an event every 0.1-0.3 s; each accepted id is logged, fsync'd."""
    from node_runtime.config import load_config
    from node_runtime.node import Node
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Node(load_config(node_file)) as node, open(accepted, "a") as log:
        node.start()
        run, n = os.urandom(4).hex(), 0  # (device, run, n) names one emission
        while not stop.wait(random.uniform(0.1, 0.3)):
            if quiet:
                continue
            event = node.emit("note", {"run": run, "n": n})
            log.write(f"{event['id']} {n}\n")
            log.flush()
            os.fsync(log.fileno())
            n += 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--out", default=str(ROOT / "docs" / "faults.md"))
    parser.add_argument("--node", help=argparse.SUPPRESS)
    parser.add_argument("--accepted", help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        pathlib.Path(args.accepted).touch()
        event_node(args.node, args.accepted, args.quiet)
        return
    folder = pathlib.Path(tempfile.mkdtemp(prefix="thanthien-faults-"))
    campaign = Campaign(folder, faults=args.faults, seed=args.seed, scale=args.scale)
    try:
        campaign.start()
        report = campaign.run()
    finally:
        campaign.close()
    pathlib.Path(args.out).write_text(report.markdown())
    print(report.markdown())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
