"""Run a module with its wall clock shifted by what a file says, to inject clock jumps.

``python -m sim.clockshift OFFSET_FILE MODULE ARGS...`` runs ``MODULE`` (as ``-m``
would) with ``time.time`` and ``datetime.datetime.now``/``utcnow`` moved by the
number of seconds in ``OFFSET_FILE`` (re-read at most every 0.1 s; missing or empty
means 0), as a system clock set wrong and then corrected would move them.
``time.monotonic`` is left alone, as the kernel leaves it. The fault campaign
(:mod:`sim.faults`) jumps the controller's clock by ±1 h this way.
"""

from __future__ import annotations

import datetime
import pathlib
import runpy
import sys
import time

_real_time = time.time
_real_datetime = datetime.datetime


class _Offset:
    def __init__(self, path: pathlib.Path):
        self.path, self.value, self.read_at = path, 0.0, -1.0

    def __call__(self) -> float:
        now = time.monotonic()
        if now - self.read_at >= 0.1:
            self.read_at = now
            try:
                self.value = float(self.path.read_text().strip() or 0)
            except (OSError, ValueError):
                self.value = 0.0
        return self.value


def install(path: pathlib.Path) -> None:
    offset = _Offset(path)

    class Shifted(_real_datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return _real_datetime.fromtimestamp(_real_time() + offset(), tz)

        @classmethod
        def utcnow(cls):  # type: ignore[no-untyped-def, override]
            return _real_datetime.utcfromtimestamp(_real_time() + offset())

    time.time = lambda: _real_time() + offset()
    datetime.datetime = Shifted  # type: ignore[misc]


if __name__ == "__main__":
    install(pathlib.Path(sys.argv[1]))
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
