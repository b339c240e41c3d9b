"""Whether the clock can be trusted for timed work: the kernel's word, then a holdover.

``adjtimex(2)`` with no modes reports the kernel's view: ``TIME_ERROR`` or
the ``STA_UNSYNC`` status bit mean unsynchronised. This is what
``timedatectl``'s NTPSynchronized shows, without needing D-Bus. The kernel
gives up on a clock about 9 hours after NTP goes (its error estimate grows
500 µs/s up to 16 s), though a Pi's crystal drifts far less: :class:`ClockTrust`
keeps trusting it for as long as the drift it may have gathered is bounded.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: modes, then 10 longs we skip over via
    # padding; status is the 7th field. Tail padding covers the reserved ints.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, loaded once (glibc's name first: ``find_library`` runs ldconfig)."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library
        return ctypes.CDLL(find_library("c"), use_errno=True)


def kernel_clock_synced() -> bool:
    """True if the kernel says the clock is synchronised to a time source."""
    tx = _Timex()
    state = _libc().adjtimex(ctypes.byref(tx))
    return state not in (-1, _TIME_ERROR) and not (tx.status & _STA_UNSYNC)


def clock_check(mode: str, state_file: pathlib.Path | None = None, *,
                drift_ppm: float = 50.0, tolerance_s: float = 60.0) -> Callable[[], bool]:
    """The check for a config's ``clock_check``: ``adjtimex`` (the kernel, then a holdover
    kept in ``state_file``: a :class:`ClockTrust`), ``always`` or ``never``."""
    if mode == "always":
        return lambda: True
    if mode == "never":
        return lambda: False
    return ClockTrust(state_file, drift_ppm=drift_ppm, tolerance_s=tolerance_s)


def describe(check: Callable[[], bool]) -> str:
    """``synced``, ``holdover ±N s`` or ``untrusted`` for telemetry and receipts."""
    if isinstance(check, ClockTrust):
        return str(check.state())
    return "synced" if check() else "untrusted"


def why_untrusted(check: Callable[[], bool]) -> str:
    """Why the clock is not trusted, in words (empty if it is)."""
    if isinstance(check, ClockTrust):
        return check.state().reason
    return "" if check() else "the clock is not synchronised (NTP)"


# -- holdover: trusting the clock for a while after the network goes -------------------

#: A Pi's crystal drifts well under this; 7 days offline stay within the tolerance.
DRIFT_PPM = 50.0
TOLERANCE_S = 60.0
_SAVE_EVERY_S = 600.0  # the last-synced record is rewritten at most this often


@dataclasses.dataclass(frozen=True)
class ClockState:
    """``synced``, ``holdover`` (within ``bound_s`` of true time) or ``untrusted``."""

    state: str
    bound_s: float = 0.0
    reason: str = ""

    @property
    def trusted(self) -> bool:
        return self.state != "untrusted"

    def __str__(self) -> str:
        if self.state == "holdover":
            return f"holdover ±{self.bound_s:.1f} s"
        return self.state


def boot_id() -> str:
    try:
        return pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def rtc_seconds() -> float | None:
    """The battery-backed real-time clock's time (a Pi 5's, with its battery), or None:
    no RTC, or one that lost its time (it then counts from 1970 or the firmware's date)."""
    try:
        value = float(pathlib.Path("/sys/class/rtc/rtc0/since_epoch").read_text())
    except (OSError, ValueError):
        return None
    return value if value > 1.7e9 else None  # before late 2023: reset, not kept


class ClockTrust:
    """Judges the clock: the kernel's word while NTP holds, then a bounded holdover.

    When the kernel last said "synchronised" is kept in ``state_file`` with the boot
    id. Without sync, the clock is trusted while the drift it may have gathered since
    (monotonic seconds x ``drift_ppm``) stays under ``tolerance_s``: 7 days at 50 ppm
    are 30 s, inside a minute. After a reboot the monotonic clock starts again; only a
    real-time clock that kept time (``rtc_seconds``) carries the wall time over, and
    the bound then grows with wall time since the sync. Otherwise the clock is
    ``untrusted`` until the next sync (a Pi without a clock battery boots in the past).
    Every source is injectable for tests.
    """

    def __init__(self, state_file: pathlib.Path | None, *, drift_ppm: float = DRIFT_PPM,
                 tolerance_s: float = TOLERANCE_S,
                 kernel_synced: Callable[[], bool] = kernel_clock_synced,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 boot: Callable[[], str] = boot_id,
                 rtc: Callable[[], float | None] = rtc_seconds):
        self.state_file = state_file
        self.drift = drift_ppm * 1e-6
        self.tolerance_s = tolerance_s
        self._kernel, self._mono, self._wall, self._rtc = kernel_synced, monotonic, wall, rtc
        self._boot = boot()
        self._lock = threading.Lock()
        self._last = self._load()  # {"wall", "mono", "boot"} of the last verified sync
        self._saved_at = -1e18

    def _load(self) -> dict[str, Any] | None:
        if self.state_file is None:
            return None
        try:
            data = json.loads(self.state_file.read_text())
            return {"wall": float(data["wall"]), "mono": float(data["mono"]),
                    "boot": str(data["boot"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None  # never synced here, or a damaged record: wait for a sync

    def _save(self, record: dict[str, Any]) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(record))
            os.replace(tmp, self.state_file)
        except OSError as exc:  # a full disk: the holdover starts from the older record
            log.warning("cannot record the clock's last sync in %s: %s", self.state_file, exc)

    def state(self) -> ClockState:
        with self._lock:
            mono, wall = self._mono(), self._wall()
            if self._kernel():
                self._last = {"wall": wall, "mono": mono, "boot": self._boot}
                if mono - self._saved_at >= _SAVE_EVERY_S:
                    self._saved_at = mono
                    self._save(self._last)
                return ClockState("synced")
            last = self._last
            if last is None:
                return ClockState("untrusted", reason="the clock has never been synchronised "
                                  "(NTP) on this device")
            if last["boot"] == self._boot:
                elapsed = mono - last["mono"]
            elif self._rtc() is not None:
                elapsed = wall - last["wall"]  # the RTC carried the wall time over the boot
            else:
                return ClockState("untrusted", reason="restarted without a real-time clock "
                                  "and not synchronised (NTP) since")
            if elapsed < 0:
                return ClockState("untrusted", reason="the clock went back past its last sync")
            bound = elapsed * self.drift
            if bound > self.tolerance_s:
                return ClockState("untrusted", bound, f"not synchronised for "
                                  f"{elapsed / 86400:.1f} days: it may be {bound:.0f} s off")
            return ClockState("holdover", bound)

    def __call__(self) -> bool:
        return self.state().trusted
