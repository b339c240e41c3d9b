"""A benchmark rig: a Mosquitto, a controller process, node configs, child processes."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from controller.access import tokens as auth
from controller.broker import CONTROLLER_USER, BrokerConfig, Mosquitto, free_port
from controller.db.writer import open_writer
from controller.fleet.registry import Registry
from node_runtime.config import NodeConfig, config_from_dict

PASSWORD = "bench-password"
ROOT = pathlib.Path(__file__).resolve().parent.parent


#: Accounts for the raw broker benchmark's publishers (bench.workers publish).
RAW_CLIENTS = 20


class Rig:
    """Owns the temporary folder and every process a benchmark starts."""

    def __init__(self, devices: list[tuple[str, str]]):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="thanthien-bench-"))
        self.broker_config = BrokerConfig(self.dir / "broker", port=free_port(),
                                          max_queued_messages=200_000)
        self.broker_config.set_user(CONTROLLER_USER, PASSWORD)
        for device_id, _ in devices:
            self.broker_config.set_user(device_id, PASSWORD)
        # Raw publishers: an account each, as the broker makes the username the client id.
        for i in range(RAW_CLIENTS):
            self.broker_config.set_user(f"bench-raw-{i:02d}", PASSWORD)
        self.broker = Mosquitto(self.broker_config)
        self.devices = devices
        self.children: list[subprocess.Popen[Any]] = []
        self.api_url = ""
        self.token = ""

    @property
    def port(self) -> int:
        return self.broker_config.port

    def start(self, controller: bool = True) -> None:
        self.broker.start()
        if controller:
            self.start_controller()

    def start_controller(self) -> None:
        data = self.dir / "controller"
        with open_writer(data / "controller.db") as writer:
            registry = Registry(writer)
            for device_id, role in self.devices:
                registry.add(device_id, role)
            self.token = writer.call(lambda db: auth.create_token(db, "bench"))
        (self.dir / "pw").write_text(PASSWORD)
        url_file = self.dir / "api-url"
        self.spawn([sys.executable, "-m", "controller.cli", "--log-level", "WARNING",
                    "--data", str(data), "serve", "--mqtt-port", str(self.port),
                    "--mqtt-password-file", str(self.dir / "pw"), "--http-port", "0",
                    # The benchmarks measure the pipeline's capacity: each bench node
                    # sends far more than a device's rate (tests/test_broker_trust.py).
                    "--device-rate", "1e9", "--device-burst", "1e9",
                    "--url-file", str(url_file)])
        while not url_file.exists() or not url_file.read_text().strip():
            time.sleep(0.05)
        self.api_url = url_file.read_text().strip()

    def node_raw(self, device_id: str, role: str = "kiosk", *, keepalive: int = 30,
                 **runtime: Any) -> dict[str, Any]:
        """A node file's tables, as ``config_from_dict`` (and worker processes) take them."""
        return {
            "device": {"id": device_id, "role": role,
                       "data_dir": str(self.dir / "nodes" / device_id)},
            "mqtt": {"port": self.port, "password": PASSWORD, "keepalive": keepalive},
            "runtime": {"clock_check": "always", "telemetry_interval": 3600, **runtime},
        }

    def node_config(self, device_id: str, role: str = "kiosk", **kwargs: Any) -> NodeConfig:
        return config_from_dict(self.node_raw(device_id, role, **kwargs))

    def spawn(self, command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(command, cwd=ROOT, **kwargs)
        self.children.append(process)
        return process

    def api(self, path: str) -> Any:
        request = urllib.request.Request(self.api_url + path,
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def close(self) -> None:
        for process in self.children:
            if process.poll() is None:
                process.terminate()
        for process in self.children:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.broker.stop()
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
