"""Keeping a node small: a Pi Zero 2 W has 512 MB for everything it runs.

Two measures, each worth a few megabytes of every node's resident memory:

- :func:`import_hiding` imports a library with some of its optional
  companions hidden: requests imports charset_normalizer (to guess the
  encoding of text responses), and a node downloads only binary audio. (For
  the same reason a node's SQLite goes through plain :mod:`sqlite3`, not
  sqlite-utils: see ``node_runtime.storage``.)
- :func:`fewer_malloc_arenas` caps glibc's per-thread malloc arenas: a
  node's half-dozen threads each get one by default, and each keeps freed
  memory of its own.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from types import ModuleType

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def import_hiding(name: str, hidden: tuple[str, ...]) -> ModuleType:
    """Import ``name`` as if the modules in ``hidden`` were not installed.

    Modules already imported are left alone, and hiding ends with this import:
    a later ``import numpy`` elsewhere works as usual. Warnings the library
    gives about the missing companions are silenced.
    """
    hide = [module for module in hidden if module not in sys.modules]
    for module in hide:
        sys.modules[module] = None  # type: ignore[assignment]  # makes import raise ImportError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    finally:
        for module in hide:
            del sys.modules[module]


def fewer_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would); call before threads
    start. False where the C library is not glibc."""
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        log.debug("not glibc: malloc arenas left as they are")
        return False
