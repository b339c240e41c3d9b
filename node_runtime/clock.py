"""Whether the system clock is synchronised (NTP), read from the kernel.

``adjtimex(2)`` with no modes reports the kernel's view: ``TIME_ERROR`` or
the ``STA_UNSYNC`` status bit mean unsynchronised. This is what
``timedatectl``'s NTPSynchronized shows, without needing D-Bus.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

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


def clock_check(mode: str) -> Callable[[], bool]:
    """The check for a config's ``clock_check``: ``adjtimex``, ``always`` or ``never``."""
    if mode == "always":
        return lambda: True
    if mode == "never":
        return lambda: False
    return kernel_clock_synced
