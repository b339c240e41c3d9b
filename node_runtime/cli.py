"""What every node's entry point shares: argv, environment, logging, signals.

Entry points stay thin: read ``--config``, build the :class:`Node`, let the
role attach its handlers, run until SIGTERM/SIGINT, close cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from node_runtime.config import NodeConfig, load_config
from node_runtime.errors import NodeError
from node_runtime.lean import fewer_malloc_arenas
from node_runtime.node import Node
from node_runtime.systemd import SystemdNotifier

Role = Callable[[Node], Any]  # attaches handlers; may return an object with close()


def main(role: Role, argv: Sequence[str] | None = None, *, prog: str, description: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="the node's TOML file")
    parser.add_argument("--log-level", default=os.environ.get("THANTHIEN_LOG", "INFO"))
    parser.add_argument("--check", action="store_true",
                        help="the technician's check: can this device reach its broker, and "
                             "if not why (Vietnamese, then English); exit 0 connected, 1 not, "
                             "2 bad node file")
    args = parser.parse_args(argv)
    if args.check:
        from node_runtime.diagnose import main as check
        return check(["--config", args.config])
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if not enrol(args.config):
            return 0  # asked to stop while waiting for approval
        config = load_config(args.config)
        return run(config, role)
    except NodeError as exc:
        parser.exit(2, f"{prog}: {exc}\n")
    return 0


def enrol(config_path: str) -> bool:
    """A device with an enrolment token claims its identity and waits for approval
    (:mod:`node_runtime.enrol`), telling systemd it is up and alive meanwhile; False if
    a signal asked it to stop first."""
    with open(config_path, "rb") as f:
        if b"[enrol]" not in f.read():
            return True
    from node_runtime.enrol import enrol_if_needed
    stop, done = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    notifier = SystemdNotifier(os.environ.get("NOTIFY_SOCKET"), os.environ.get("WATCHDOG_USEC"))
    notifier.ready()

    def ping() -> None:
        while not done.wait(notifier.watchdog_interval or 10):
            notifier.watchdog()
    threading.Thread(target=ping, name="enrol-watchdog", daemon=True).start()
    try:
        return enrol_if_needed(config_path, stop=stop, status=notifier.status)
    finally:
        done.set()


def run(config: NodeConfig, role: Role) -> int:
    """Run one node until a signal asks it to stop."""
    fewer_malloc_arenas()  # before any thread starts
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    notifier = SystemdNotifier(os.environ.get("NOTIFY_SOCKET"), os.environ.get("WATCHDOG_USEC"))
    with Node(config, notifier=notifier) as node:
        part = role(node)
        node.start()
        try:
            # A role with its own main loop (the kiosk's Kivy app) runs it here, on the
            # main thread, until ``stop`` is set; it may return an exit code.
            main_loop = getattr(part, "run", None)
            if main_loop is None:
                stop.wait()
            else:
                return int(main_loop(stop) or 0)
        finally:
            close = getattr(part, "close", None)
            if close:
                close()
    return 0
