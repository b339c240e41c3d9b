"""A node: the session, the outbox and its delivery, commands, config, telemetry.

Roles build one ``Node`` from a :class:`NodeConfig`, register command and
config handlers, call :meth:`Node.start`, and record what must reach the
controller with :meth:`Node.emit`, which returns once the event is durable.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from node_runtime.clock import clock_check, describe
from node_runtime.commands import CommandDispatcher, CommandHandler
from node_runtime.config import NodeConfig
from node_runtime.delivery import Delivery
from node_runtime.outbox import Outbox
from node_runtime.session import MqttSession
from node_runtime.storage import open_durable, set_aside_if_corrupt
from node_runtime.systemd import SystemdNotifier
from node_runtime.telemetry import SystemProbe
from wire.errors import MessageError
from wire.messages import (
    EVENT_CONFIG_APPLIED,
    EVENT_STORAGE_RESET,
    decode,
    encode,
    format_ts,
    utc_now,
)
from wire.topics import Topic, device_topic

if TYPE_CHECKING:
    from node_runtime.status_page import StatusPage

log = logging.getLogger(__name__)

SOFTWARE_VERSION = "0.1.0"
OFFLINE_STATE = encode(Topic.STATE, {"status": "offline"})  # the will, and a clean goodbye

#: How long after applying a desired config the node reports it (event, state).
REPORT_DELAY_S = 1.0

#: A config handler applies the role's part of a desired config, or raises to refuse it.
ConfigHandler = Callable[[dict[str, Any]], None]


class Node:
    """The runtime of one device; a context manager."""

    def __init__(
        self, config: NodeConfig, *, sw_version: str = SOFTWARE_VERSION,
        clock_synced: Callable[[], bool] | None = None,
        probe: SystemProbe | None = None,
        notifier: SystemdNotifier | None = None,
    ):
        self.config = config
        self.device_id = config.device_id
        self.sw_version = sw_version
        self.clock_synced = clock_synced or clock_check(
            config.clock_check, config.data_dir / "clock.json",
            drift_ppm=config.clock_drift_ppm, tolerance_s=config.clock_tolerance_s)
        self.probe = probe or SystemProbe(data_dir=config.data_dir)
        #: Roles add their own telemetry: each ``fields()`` returns keys to merge in.
        self.telemetry_fields: list[Callable[[], dict[str, Any]]] = []
        self.notifier = notifier or SystemdNotifier(None)
        self._started_at = time.monotonic()
        self._stop = threading.Event()
        self._config_handlers: list[ConfigHandler] = []
        self._reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=64)
        self._reports_lock = threading.Lock()
        self._report_timer: threading.Timer | None = None
        #: Role checks for the watchdog (e.g. the kiosk's UI loop still turning).
        self.health_checks: list[Callable[[], bool]] = []
        db_path = config.data_dir / "node.db"
        #: A damaged node.db set aside at start (reported in telemetry and as an event).
        self.storage_reset = set_aside_if_corrupt(db_path)
        if self.storage_reset:
            log.error("%s; starting a fresh one", self.storage_reset)
        self.outbox = Outbox(db_path, self.device_id, clock_synced=self.clock_synced)
        try:
            self._state_lock = threading.Lock()
            self._state = open_durable(db_path)
            self._state.execute(
                "CREATE TABLE IF NOT EXISTS applied_config"
                " (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER, config TEXT)"
            )
            row = self._state.execute("SELECT version, config FROM applied_config").fetchone()
            self.config_version: int = row[0] if row else 0
            self.desired: dict[str, Any] = json.loads(row[1]) if row else {}
            self.commands = CommandDispatcher(self._state, self.emit, self._state_lock)
        except Exception:
            self.outbox.close()
            raise
        if self.storage_reset:  # the controller learns why this device's seqs restart
            self.outbox.put(EVENT_STORAGE_RESET, {"reason": self.storage_reset})
        self.session = MqttSession(
            self.device_id, config.mqtt,
            will=(self.topic(Topic.STATE), OFFLINE_STATE),
            on_connect=self._connected, on_disconnect=self._disconnected,
        )
        self.delivery = Delivery(
            self.outbox, lambda payload: self.session.publish(self.topic(Topic.EVENTS), payload),
            window=config.outbox_window, resend_after=config.resend_after,
        )
        self.session.subscribe(self.topic(Topic.ACKS), self._acks_received)
        self.session.subscribe(self.topic(Topic.COMMANDS), self.commands.receive)
        self.session.subscribe(self.topic(Topic.CONFIG), self._config_received)
        self._housekeeping = threading.Thread(target=self._housekeep, name="housekeeping",
                                              daemon=True)
        #: The technician's page (``[runtime] status_port``), once started.
        self.status_page: StatusPage | None = None

    # -- what roles use -------------------------------------------------------------

    def topic(self, leaf: Topic) -> str:
        return device_topic(self.device_id, leaf)

    def emit(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """Record an event durably (fsync'd) and return it; delivery follows."""
        return self.outbox.put(type_, data)

    def command(self, name: str, handler: CommandHandler) -> None:
        """Run ``handler(args)`` for the controller's command ``name``."""
        self.commands.register(name, handler)

    def on_config(self, handler: ConfigHandler) -> None:
        """Call ``handler(config)`` with the desired config now and on every new version."""
        self._config_handlers.append(handler)

    @property
    def online(self) -> bool:
        return self.session.is_connected.is_set()

    @property
    def uptime(self) -> float:
        """Seconds since this node was built."""
        return time.monotonic() - self._started_at

    def link(self) -> dict[str, Any]:
        """How the broker link has gone since start (telemetry's ``link``); no secrets."""
        s = self.session
        link: dict[str, Any] = {"reconnects": max(s.connects - 1, 0)}
        if s.connected_at is not None:
            link["connected_at"] = _wall_ts(s.connected_at)
        if s.last_disconnect is not None:
            link["last_disconnect"] = {"reason": s.last_disconnect.reason,
                                       "code": s.last_disconnect.code,
                                       "at": _wall_ts(s.last_disconnect.at)}
        return link

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start every thread; returns at once, connected or not."""
        if self.desired:
            self._apply_handlers(self.desired)
        # The page binds its port before the node's own connection takes an ephemeral one.
        self._start_status_page()
        self.delivery.start()
        self.commands.start()
        self.session.start()
        self._housekeeping.start()
        self.notifier.ready()
        log.info("node %s (%s) started", self.device_id, self.config.role)

    def close(self) -> None:
        """Stop cleanly; events not yet acked stay in the outbox for next time."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._reports_lock:
            timer = self._report_timer
        if timer is not None:
            timer.cancel()
        self._send_reports()  # (into the outbox: delivered after the next start if not now)
        self.notifier.stopping()
        if self.status_page is not None:
            self.status_page.close()
        if self.online:
            self.session.publish(self.topic(Topic.STATE), OFFLINE_STATE, retain=True)
        self.session.close()
        self.delivery.close()
        self.commands.close()
        if self._housekeeping.is_alive():
            self._housekeeping.join(timeout=5)
        self.outbox.close()
        with self._state_lock:
            self._state.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages -------------------------------------------------------------------

    def birth(self) -> dict[str, Any]:
        return {
            "status": "online",
            "role": self.config.role,
            "sw": self.sw_version,
            "config_version": self.config_version,
            "keepalive": self.config.mqtt.keepalive,
            "mqtt_protocol": self.session.protocol,  # shows which nodes fell back to 3.1.1
            "telemetry_interval": self.config.telemetry_interval,
            "ts": format_ts(utc_now()),
        }

    def telemetry(self) -> dict[str, Any]:
        figures = self.probe.read()
        extra = {k: v for fields in self.telemetry_fields for k, v in fields().items()}
        return {
            "ts": format_ts(utc_now()),
            **{k: v for k, v in figures.items() if v is not None},
            "sw": self.sw_version,
            "clock_synced": self.clock_synced(),
            "clock": describe(self.clock_synced),
            "outbox_depth": self.outbox.depth,
            "link": self.link(),
            **({"storage_reset": self.storage_reset} if self.storage_reset else {}),
            **extra,
        }

    def publish_telemetry(self) -> None:
        """Send telemetry now (a role's state changed: a speaker started playing), not
        only at the next interval."""
        if self.session.is_connected.is_set():
            self._publish_telemetry()

    def _start_status_page(self) -> None:
        """Serve the technician's page if configured; a port in use leaves the node
        running without it."""
        if not self.config.status_port:
            return
        from node_runtime.status_page import StatusPage, node_status  # only if served

        page = StatusPage(lambda: node_status(self), host=self.config.status_bind,
                          port=self.config.status_port)
        try:
            page.start()
        except OSError as exc:
            log.warning("status page not served on %s:%s: %s", self.config.status_bind,
                        self.config.status_port, exc)
            return
        self.status_page = page

    def _connected(self) -> None:
        self.session.publish(self.topic(Topic.STATE), encode(Topic.STATE, self.birth()),
                             retain=True)
        self.delivery.connected()
        self._publish_telemetry()

    def _disconnected(self) -> None:
        self.delivery.disconnected()

    def _acks_received(self, topic: str, payload: bytes) -> None:
        try:
            ids = decode(Topic.ACKS, payload)["ids"]
        except MessageError as exc:
            log.warning("rejected ack: %s", exc)
            return
        self.delivery.acknowledged(ids)

    def _config_received(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # retained config cleared
        try:
            message = decode(Topic.CONFIG, payload)
        except MessageError as exc:
            log.warning("rejected desired config: %s", exc)
            return
        version, desired = message["version"], message["config"]
        if version == self.config_version:
            return
        if self.config_version and version < self.config_version:
            # A stale copy: a broker restarted before it saved the newer retained config
            # would hand back, say, a schedule whose emergency was since cancelled.
            log.warning("ignored desired config version %s: older than the running %s",
                        version, self.config_version)
            self._report_later({
                "version": version, "ok": False, "running_version": self.config_version,
                "error": f"version {version} is older than the running "
                         f"{self.config_version}"})
            return
        error = self._apply_handlers(desired)
        if error is None:
            with self._state_lock:
                self._state.execute(
                    "INSERT OR REPLACE INTO applied_config (id, version, config) VALUES (1, ?, ?)",
                    (version, json.dumps(desired, ensure_ascii=False)),
                )
            self.config_version, self.desired = version, desired
            log.info("applied config version %s", version)
        data: dict[str, Any] = {"version": version, "ok": error is None,
                                "running_version": self.config_version}
        if error:
            data["error"] = error
        self._report_later(data)

    def _report_later(self, data: dict[str, Any]) -> None:
        """Report an applied (or refused) config ``REPORT_DELAY_S`` from now: the
        ``config_applied`` event, and the retained state with the running version. An
        emergency reaches every speaker at once as a new config; what it must do (close
        the relay, sound) comes first, the acknowledgements that every speaker and then
        the controller must process come after. Configs within the delay are reported
        together."""
        with self._reports_lock:
            self._reports.append(data)
            if self._report_timer is not None or self._stop.is_set():
                return
            self._report_timer = threading.Timer(REPORT_DELAY_S, self._send_reports)
            self._report_timer.daemon = True
            self._report_timer.start()

    def _send_reports(self) -> None:
        with self._reports_lock:
            reports, self._report_timer = list(self._reports), None
            self._reports.clear()
        if any(r["ok"] for r in reports):
            self.session.publish(self.topic(Topic.STATE), encode(Topic.STATE, self.birth()),
                                 retain=True)
        for data in reports:
            self.emit(EVENT_CONFIG_APPLIED, data)

    def _apply_handlers(self, desired: dict[str, Any]) -> str | None:
        for handler in self._config_handlers:
            try:
                handler(desired)
            except Exception as exc:
                log.warning("config refused: %s", exc)
                return f"{type(exc).__name__}: {exc}"
        return None

    def _publish_telemetry(self) -> None:
        self.session.publish(self.topic(Topic.TELEMETRY), encode(Topic.TELEMETRY, self.telemetry()),
                             qos=0)

    def _housekeep(self) -> None:
        # Telemetry at least every keepalive / 2 doubles as the heartbeat the
        # controller's liveness check listens for (the broker's will is slower).
        interval = min(self.config.telemetry_interval, self.config.mqtt.keepalive / 2)
        tick = min(interval, self.notifier.watchdog_interval or interval, 5.0)
        next_telemetry = time.monotonic() + interval
        while not self._stop.wait(tick):
            if time.monotonic() >= next_telemetry:
                next_telemetry += interval
                try:
                    self._publish_telemetry()
                except Exception:
                    log.exception("telemetry failed")
            if self.notifier.enabled and self._healthy():
                self.notifier.watchdog()

    def _healthy(self) -> bool:
        """Ping the watchdog only while the threads that matter are alive."""
        return (self.delivery.alive and self.commands.alive
                and all(check() for check in self.health_checks))


def _wall_ts(when: float) -> str:
    return format_ts(dt.datetime.fromtimestamp(when, dt.UTC))
