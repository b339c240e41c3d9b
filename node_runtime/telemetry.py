"""Reading the health figures a node reports: uptime, temperature, load, memory, disk;
and the network facts the technician's check reads (default route, addresses, Wi-Fi).

Paths are arguments so tests (and boards with other sensors) redirect them,
as gpiozero's ``CPUTemperature(sensor_file=...)`` does.
"""

from __future__ import annotations

import os
import pathlib
import socket
from typing import Any

_SIOCGIFADDR = 0x8915  # <linux/sockios.h>: an interface's IPv4 address


class SystemProbe:
    """Reads /proc and /sys; a value it cannot read is reported as ``None``."""

    def __init__(
        self, *, data_dir: str | pathlib.Path = "/",
        thermal_file: str = "/sys/class/thermal/thermal_zone0/temp",
        proc: str = "/proc",
    ):
        self.data_dir = pathlib.Path(data_dir)
        self.thermal_file = pathlib.Path(thermal_file)
        self.proc = pathlib.Path(proc)

    def read(self) -> dict[str, Any]:
        return {
            "uptime_s": self.uptime(),
            "cpu_temp_c": self.cpu_temperature(),
            "load1": self.load(),
            "mem_available_mb": self.memory_available(),
            "disk_free_mb": self.disk_free(),
        }

    def uptime(self) -> float:
        try:
            return float((self.proc / "uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0.0

    def cpu_temperature(self) -> float | None:
        try:
            return int(self.thermal_file.read_text().strip()) / 1000
        except (OSError, ValueError):
            return None

    def load(self) -> float | None:
        try:
            return float((self.proc / "loadavg").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def memory_available(self) -> float | None:
        try:
            for line in (self.proc / "meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            pass
        return None

    def disk_free(self) -> float | None:
        try:
            st = os.statvfs(self.data_dir)
        except OSError:
            return None
        return round(st.f_bavail * st.f_frsize / 2**20, 1)

    def default_route(self) -> tuple[str, str] | None:
        """(interface, gateway) of the best IPv4 default route, from ``net/route``."""
        try:
            rows = [line.split() for line in (self.proc / "net" / "route").read_text()
                    .splitlines()[1:]]
            up = [r for r in rows if len(r) >= 8 and r[1] == r[7] == "00000000"
                  and int(r[3], 16) & 1]  # RTF_UP
            best = min(up, key=lambda r: int(r[6]), default=None)  # lowest metric
            if best is None:
                return None
            return best[0], socket.inet_ntoa(int(best[2], 16).to_bytes(4, "little"))
        except (OSError, ValueError):
            return None

    def wireless(self) -> dict[str, tuple[float, float]]:
        """Wi-Fi interfaces and their (link quality, signal level in dBm), from
        ``net/wireless`` (a driver shows quality 0 while it has joined no network)."""
        found: dict[str, tuple[float, float]] = {}
        try:
            for line in (self.proc / "net" / "wireless").read_text().splitlines()[2:]:
                parts = line.split()
                if len(parts) >= 4:
                    found[parts[0].rstrip(":")] = (float(parts[2].rstrip(".")),
                                                   float(parts[3].rstrip(".")))
        except (OSError, ValueError):
            pass
        return found

    @staticmethod
    def interface_address(name: str) -> str | None:
        """The interface's IPv4 address, or None if it has none (or no such interface)."""
        import fcntl
        import struct
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:
                return None
        return socket.inet_ntoa(packed[20:24])
