"""Running Mosquitto as a child process (the demo, the tests, the benchmarks)."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

from controller.broker.config import BrokerConfig
from controller.errors import BrokerError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (for tests and demos on loopback)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def signal_reload(config: BrokerConfig) -> bool:
    """Make the Mosquitto running ``config`` (systemd's or a child) re-read its accounts
    and ACL now: SIGHUP to the process id in the ``pid_file`` its conf names. A removed
    account's open connection is closed by that reload. False when no such broker runs
    (no pid file, or the pid is no longer a mosquitto process)."""
    try:
        conf = config.conf.read_text()
    except OSError:
        return False
    pid_files = [line.split(None, 1)[1].strip() for line in conf.splitlines()
                 if line.startswith("pid_file ")]
    try:
        pid = int(pathlib.Path(pid_files[-1]).read_text().strip())
        comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
    except (IndexError, OSError, ValueError):
        return False
    if comm != "mosquitto":
        return False  # a stale pid file: never signal someone else's process
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise BrokerError(f"cannot signal the broker (pid {pid}) to reload: {exc}") from exc
    return True


class Mosquitto:
    """A Mosquitto process running a :class:`BrokerConfig` (for the demo and tests)."""

    def __init__(self, config: BrokerConfig, *, binary: str | None = None):
        self.config = config
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if not os.path.exists(self.binary):
            raise BrokerError(f"mosquitto not found at {self.binary}: install the 'mosquitto' "
                              "package (make setup does)")
        self.config.write()
        log_file = open(self.config.directory / "mosquitto.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen([self.binary, "-c", str(self.config.conf)],
                                        stdout=log_file, stderr=log_file)
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self.process.returncode}; see "
                                  f"{self.config.directory / 'mosquitto.log'}")
            try:
                socket.create_connection((self.config.host, self.config.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on port {self.config.port} in {timeout} s")

    def reload(self) -> None:
        """Re-read the password and ACL files (SIGHUP)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL, as a power cut or OOM would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
