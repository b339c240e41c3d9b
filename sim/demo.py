"""``make demo``: Mosquitto, the controller and simulated devices, with a live status.

Everything it runs keeps its files under ``.demo/``: the broker's config and
accounts, the controller's database, each device's node file and outbox,
and the logs. The API is HTTPS, as in a commune, with a throwaway CA of the
demo's own in ``.demo/tls/`` (``ca.crt`` is what curl, the demo's own
requests and the speakers trust). It writes the API base URL to
``.demo/api-url`` (and the broker's port to ``.demo/mqtt-port``), an admin token
to ``.demo/admin-token`` and the console's admin name and password to
``.demo/admin-password``, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from controller.access import tokens as auth
from controller.access import users
from controller.access.roles import ADMIN
from controller.broadcasts.schedule import TIMEZONE, in_quiet_hours
from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port, tls
from controller.db.writer import open_writer
from controller.fleet.registry import Registry
from provisioning.identity import new_identity, new_password
from provisioning.node_file import node_file_text
from sim import history


#: (device id, role, hamlet, command that runs it given its node file)
def simulated_devices(kiosks: int, window: bool = False) -> list[tuple[str, str, str, list[str]]]:
    devices = [(f"sim-kiosk-{n:02d}", "kiosk", "Ấp 1",
                [sys.executable, "-m", "sim.cli", "kiosk", "--config"])
               for n in range(1, kiosks + 1)]
    if window:  # the real Kivy kiosk, in a window on the user's display
        devices.append((WINDOW_KIOSK, "kiosk", "Ấp 1", [sys.executable, "-m", "kiosk.cli",
                                                         "--config"]))
    return devices


WINDOW_KIOSK = "kiosk-window"
#: The console's admin account in the demo.
CONSOLE_ADMIN = "admin"


class Demo:
    """Starts and stops the demo's processes."""

    def __init__(self, root: pathlib.Path, kiosks: int = 3, window: bool = False,
                 speakers: int = 3, bulletin_in: float = 60.0, cameras: bool = True):
        self.root = root
        self.cameras = cameras
        self.kiosks = kiosks
        self.speakers, self.bulletin_in = speakers, bulletin_in
        self.window = window
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.broker: Mosquitto | None = None
        self.api_url = ""
        self.token = ""
        self.password = ""
        #: The demo CA's certificate, and a client context trusting it (set by start).
        self.ca = self.root / "tls" / tls.CA_CERT
        self.tls = ssl.create_default_context()

    def start(self) -> None:
        self.root.mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        broker = BrokerConfig(self.root / "broker", port=free_port())
        # For a device provisioned by hand against the demo (docs/provisioning.md).
        (self.root / "mqtt-port").write_text(f"{broker.port}\n")
        controller_password = new_password()
        broker.set_user(CONTROLLER_USER, controller_password)
        password_file = self.root / "broker" / "controller-password"
        password_file.write_text(controller_password)
        devices = self._provision(broker)
        https = self._certificates()
        self.broker = Mosquitto(broker)
        self.broker.start()
        url_file = self.root / "api-url"
        url_file.unlink(missing_ok=True)
        self._spawn("controller", [
            sys.executable, "-m", "controller.cli", "--data", str(self.root / "controller"),
            "serve", "--mqtt-port", str(broker.port), "--mqtt-password-file", str(password_file),
            "--http-port", "0", "--url-file", str(url_file),
            "--http-tls-cert", str(https.cert_path), "--http-tls-key", str(https.key_path),
            "--broker-passwd", str(broker.passwd)])
        deadline = time.monotonic() + 30
        while not url_file.exists() or not url_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError("the controller did not start; see .demo/logs/controller.log")
            time.sleep(0.1)
        self.api_url = url_file.read_text().strip()
        if self.window:
            self._roster_for_window_kiosk()
        for device_id, command in devices:
            self._spawn(device_id, command)
        if self.speakers:
            self._start_speakers(broker)
        if self.cameras:
            self._start_cameras(broker)

    def _certificates(self) -> tls.ServerCertificate:
        """The demo's throwaway CA (made once per demo folder) and the controller's HTTPS
        certificate from it, for 127.0.0.1 and localhost."""
        folder = self.root / "tls"
        ca = (tls.load_ca(folder) if self.ca.exists()
              else tls.make_ca(folder, "thanthien demo CA (throwaway)"))
        self.tls = ssl.create_default_context(cafile=str(ca.cert_path))
        return tls.issue_server_cert(ca, folder, "controller", ["localhost"],
                                     ["127.0.0.1", "::1"])

    def _start_speakers(self, broker: BrokerConfig) -> None:
        """Hamlet speakers (real node code, sound into ALSA files under ``speakers/``) and a
        bulletin to two hamlets ``bulletin_in`` seconds from now, plus a daily one."""
        from sim import speakers
        conf, made = speakers.provision_speakers(self.root / "speakers", broker, self.api_url,
                                                 self.speakers, ca=self.ca.resolve())
        assert self.broker is not None
        self.broker.reload()
        for device, hamlet, node_file in made:
            self.send("POST", "/api/v1/devices", {"id": device, "role": "speaker",
                                                  "hamlet": hamlet})
            self._spawn(device, [sys.executable, "-m", "speaker_node.cli", "--config",
                                 str(node_file)], {"ALSA_CONFIG_PATH": str(conf)})
        body, content_type = speakers.multipart({"title": "Bản tin mẫu"}, "demo.wav",
                                                speakers.bulletin_wav())
        request = urllib.request.Request(
            self.api_url + "/api/v1/audio", data=body, method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        with urllib.request.urlopen(request, timeout=30, context=self.tls) as response:
            audio = json.load(response)
        local = dt.datetime.now(dt.UTC) + dt.timedelta(hours=7, seconds=self.bulletin_in)
        self._keep_quiet_hours_clear_of(local)
        hamlets = sorted({h for _, h, _ in made})[:2]
        self.send("POST", "/api/v1/broadcasts", {
            "audio_id": audio["id"], "start": local.replace(tzinfo=None).isoformat(),
            "targets": {"hamlets": hamlets}, "title": "Bản tin thử"})
        tomorrow = (local + dt.timedelta(days=1)).date()
        self.send("POST", "/api/v1/broadcasts", {
            "audio_id": audio["id"], "start": f"{tomorrow}T06:30", "rrule": "FREQ=DAILY",
            "title": "Bản tin sáng hằng ngày"})

    def _start_cameras(self, broker: BrokerConfig) -> None:
        """A camera over each desk (real node code, frames drawn in software), attached to
        its desk so a dissatisfied rating there holds its footage."""
        from sim import cameras
        desks = [d["id"] for d in self.send("GET", "/api/v1/desks", None)]
        made = cameras.provision_cameras(self.root / "cameras", broker, self.api_url, desks,
                                         ca=self.ca.resolve())
        assert self.broker is not None
        self.broker.reload()
        for device, desk, node_file in made:
            self.send("POST", "/api/v1/devices", {"id": device, "role": "camera"})
            self.send("PUT", f"/api/v1/desks/{desk}/cameras", {"cameras": [device]})
            self._spawn(device, [sys.executable, "-m", "camera_node.cli", "--config",
                                 str(node_file)])

    def _keep_quiet_hours_clear_of(self, local: dt.datetime) -> None:
        """A demo started in the evening would have its test bulletin (at ``local``, the
        commune's wall time) refused in the quiet hours (21:00–05:30): move them, for this
        demo only, to an hour half a day away, which holds neither that bulletin nor the
        daily 06:30 one."""
        quiet = tuple(dt.time.fromisoformat(t) for t in
                      self.send("GET", "/api/v1/speakers/quiet-hours", None)["quiet_hours"])
        start = local.replace(tzinfo=ZoneInfo(TIMEZONE))
        if not in_quiet_hours(start, 120, TIMEZONE, quiet):  # type: ignore[arg-type]
            return
        moved = [(local + dt.timedelta(hours=h)).strftime("%H:%M") for h in (12, 13)]
        self.send("PUT", "/api/v1/speakers/quiet-hours", {"from": moved[0], "to": moved[1]})
        print(f"demo: quiet hours moved to {moved[0]}–{moved[1]} so that the test bulletin "
              "may play now", flush=True)

    def _roster_for_window_kiosk(self) -> None:
        """An officer on duty at the window kiosk's desk, so its ratings carry one."""
        now = dt.datetime.now(dt.UTC)
        self.send("PUT", "/api/v1/officers/demo-lan",
                  {"name": "Nguyễn Thị Lan", "title": "Công chức Tư pháp – Hộ tịch"})
        self.send("PUT", "/api/v1/desks/quay-1", {"name": "Bộ phận một cửa — Quầy 1",
                                                  "kiosk": WINDOW_KIOSK})
        self.send("POST", "/api/v1/roster", {
            "desk": "quay-1", "officer": "demo-lan",
            "start": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (now + dt.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")})

    def send(self, method: str, path: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10, context=self.tls) as response:
            return json.load(response)

    def _provision(self, broker: BrokerConfig) -> list[tuple[str, list[str]]]:
        commands = []
        with open_writer(self.root / "controller" / "controller.db") as writer:
            registry = Registry(writer)
            self.token = writer.call(lambda db: auth.create_token(db, "demo-admin"))
            (self.root / "admin-token").write_text(self.token + "\n")
            # The console's admin: signs in with a name and password (a new one each run).
            self.password = new_password()
            writer.call(lambda db: users.add_user(db, CONSOLE_ADMIN, ADMIN, self.password))
            secret = self.root / "admin-password"
            secret.write_text(f"{CONSOLE_ADMIN}\n{self.password}\n")
            os.chmod(secret, 0o600)
            for device_id, role, hamlet, command in simulated_devices(self.kiosks,
                                                                      self.window):
                identity = new_identity(device_id, role, hamlet=hamlet)
                broker.set_user(device_id, identity.password)
                registry.add(device_id, role, hamlet=hamlet)
                device_dir = self.root / "devices" / device_id
                device_dir.mkdir(parents=True, exist_ok=True)
                node_file = device_dir / "node.toml"
                node_file.write_text(node_file_text(
                    identity, mqtt_host="127.0.0.1", mqtt_port=broker.port,
                    data_dir=str((device_dir / "data").resolve()),
                    runtime={"telemetry_interval": 10, "clock_check": "always", "status_port": 0}))
                commands.append((device_id, [*command, str(node_file)]))
            sims = [d for d, role, _, _ in simulated_devices(self.kiosks) if role == "kiosk"]
            seeded = writer.call(lambda db: history.seed(db, sims))
            if seeded:
                print(f"demo: {seeded:,} ratings of the last nine months written, with "
                      "officers, desks and their roster", flush=True)
        return commands

    def _spawn(self, name: str, command: list[str], env_extra: dict[str, str] | None = None
               ) -> None:
        log = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
        self.processes.append((name, subprocess.Popen(command, stdout=log, stderr=log, env=env)))
        log.close()

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.api_url + path,
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=5, context=self.tls) as response:
            return json.load(response)

    def status(self) -> str:
        devices = self.get("/api/v1/devices")
        health = self.get("/api/v1/health")
        ratings = self.get("/api/v1/ratings?limit=5&include_misuse=true")
        lines = [
            f"thanthien demo — API {self.api_url}/api/v1   (Ctrl-C to stop)",
            f"events stored: {health['counts'].get('events_stored', 0)}   "
            f"rejected: {sum(health['rejections'].values())}",
            "",
            f"{'device':18} {'role':8} {'status':9} {'online':7} outbox",
        ]
        for d in devices:
            depth = (d["telemetry"] or {}).get("outbox_depth", "-")
            lines.append(f"{d['id']:18} {d['role'] or '-':8} {d['status']:9} "
                         f"{'yes' if d['online'] else 'no':7} {depth}")
        lines += ["", "latest ratings:"]
        lines += [f"  {r['ts']}  {r['device']:16} level {r['level']}/{r['scale']} "
                  f"{r['data'].get('label', '')}" for r in ratings]
        return "\n".join(lines)

    def check_children(self) -> list[str]:
        return [f"{name} exited with {p.returncode}" for name, p in self.processes
                if p.poll() is not None]

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _, process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.broker:
            self.broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thanthien-sim demo")
    parser.add_argument("--kiosks", type=int, default=3)
    parser.add_argument("--dir", default=".demo")
    parser.add_argument("--speakers", type=int, default=3,
                        help="hamlet speakers playing into ALSA files (.demo/speakers/*.raw)")
    parser.add_argument("--bulletin-in", type=float, default=60.0,
                        help="seconds until the demo's test bulletin plays on two hamlets")
    parser.add_argument("--cameras", action=argparse.BooleanOptionalAction, default=True,
                        help="a simulated camera over each desk (frames drawn in software)")
    parser.add_argument("--duration", type=float, default=0, help="stop after N seconds")
    parser.add_argument("--window", action=argparse.BooleanOptionalAction,
                        default=bool(os.environ.get("DISPLAY")),
                        help="also run the real kiosk in a window (default: if DISPLAY is set)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    demo = Demo(pathlib.Path(args.dir), kiosks=args.kiosks, window=args.window,
                speakers=args.speakers, bulletin_in=args.bulletin_in, cameras=args.cameras)
    tty = sys.stdout.isatty()
    try:
        demo.start()
        print(f"API base URL: {demo.api_url}   (in {args.dir}/api-url)")
        print(f"admin token:  {demo.token}   (in {args.dir}/admin-token)")
        print(f"console:      {demo.api_url}/   sign in as {CONSOLE_ADMIN} / {demo.password}"
              f"   (in {args.dir}/admin-password; the browser must trust the demo CA)")
        print(f"demo CA:      {demo.ca}   (HTTPS: curl and browsers trust it)")
        print(f"try: curl --cacert {demo.ca} "
              f"-H \"Authorization: Bearer $(cat {args.dir}/admin-token)\" "
              f"$(cat {args.dir}/api-url)/api/v1/ratings", flush=True)
        started = time.monotonic()
        while not stop.wait(1.0 if tty else 5.0):
            if args.duration and time.monotonic() - started > args.duration:
                break
            problems = demo.check_children()
            if problems:
                print("demo: " + "; ".join(problems) + f" (see {args.dir}/logs)", file=sys.stderr)
                return 1
            try:
                screen = demo.status()
            except OSError as exc:
                screen = f"controller not answering: {exc}"
            print(("\033[H\033[J" if tty else "\n") + screen, flush=True)
    finally:
        demo.stop()
        print("demo stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
