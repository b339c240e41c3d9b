"""Reading the health figures a node reports: uptime, temperature, load, memory, disk.

Paths are arguments so tests (and boards with other sensors) redirect them,
as gpiozero's ``CPUTemperature(sensor_file=...)`` does.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any


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
