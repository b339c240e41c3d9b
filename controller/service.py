"""The controller service: database, MQTT hub, HTTP API and housekeeping, wired together."""

from __future__ import annotations

import logging
import pathlib
import threading
import time

import sqlite_utils

from controller import alerts as alerts_module
from controller import broadcasts, ratings, storage
from controller import cases as cases_module
from controller import commands as commands_module
from controller import desired_config as config_module
from controller import roster as roster_module
from controller.api import build_router
from controller.audio_library import AudioLibrary
from controller.broadcasts import Broadcasts
from controller.commands import Commands
from controller.desired_config import DesiredConfig
from controller.device_auth import DeviceAuth
from controller.http import HttpServer
from controller.hub import Hub
from controller.ingest import Ingestor
from controller.metrics import Metrics
from controller.registry import Registry
from controller.writer import Writer
from node_runtime.config import MqttSettings
from wire.messages import EVENT_COMMAND_RESULT, EVENT_CONFIG_APPLIED
from wire.speaker import EVENT_PLAYBACK
from wire.topics import ALERTS

log = logging.getLogger(__name__)


class Controller:
    """Owns every part of the service; ``start``, then ``close`` (or use ``with``)."""

    def __init__(
        self, db_path: str | pathlib.Path, mqtt: MqttSettings, *,
        http_host: str = "127.0.0.1", http_port: int = 8080, sweep_interval: float = 5.0,
        media_dir: str | pathlib.Path | None = None,
        broker_passwd: str | pathlib.Path | None = None,
    ):
        self.db_path = pathlib.Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self._local = threading.local()
        self._readers: list[sqlite_utils.Database] = []
        self._readers_lock = threading.Lock()
        self._stop = threading.Event()
        self.sweep_interval = sweep_interval
        db = storage.connect(self.db_path)
        self.schema_version = storage.migrate(db)
        self.writer = Writer(db)
        self.hub = Hub(mqtt, self.metrics)
        self.registry = Registry(self.writer)
        self.ingestor = Ingestor(self.writer, self.hub.publish_ack, self.metrics)
        self.commands = Commands(self.writer, self.hub.publish_command)
        self.desired_config = DesiredConfig(self.writer, self.hub.publish_config)
        self.alerts = alerts_module.Alerts(self.writer, self._publish_alert)
        rating_store = ratings.RatingStore([cases_module.open_case, self.alerts.check])
        self.ingestor.register(ratings.EVENT_RATING, rating_store.store)
        self.ingestor.register(ratings.EVENT_RATING_DETAIL, rating_store.store_detail)
        self.ingestor.register(EVENT_COMMAND_RESULT, commands_module.store_result)
        self.ingestor.register(EVENT_CONFIG_APPLIED, config_module.store_applied)
        self.audio_library = AudioLibrary(self.writer, media_dir or self.db_path.parent / "audio")
        self.device_auth = DeviceAuth(broker_passwd)
        self.broadcasts = Broadcasts(self.writer, self.reader, self.desired_config)
        self.ingestor.register(EVENT_PLAYBACK, broadcasts.store_receipt)
        self.hub.attach(self.registry, self.ingestor, self.commands)
        self.roster = roster_module.Roster(self)
        self.http = HttpServer(build_router(self), http_host, http_port)
        self._sweeper = threading.Thread(target=self._sweep, name="sweeper", daemon=True)

    def _publish_alert(self, alert: dict[str, object]) -> None:
        self.hub.session.publish(ALERTS, alerts_module.alert_payload(alert), retain=False)

    def reader(self) -> sqlite_utils.Database:
        """A read-only connection for the calling thread (WAL lets reads run beside writes)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = storage.connect(self.db_path)
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    @property
    def api_url(self) -> str:
        return self.http.url

    def start(self) -> None:
        self.writer.start()
        self.hub.start()
        self.http.start()
        self._sweeper.start()
        self.broadcasts.start()
        log.info("controller serving %s", self.api_url)

    def _sweep(self) -> None:
        # Liveness is checked in memory four times a second, so a silent device is
        # offline within 1.25 x keepalive + 0.25 s; command expiry needs the database.
        next_expiry = 0.0
        while not self._stop.wait(0.25):
            try:
                self.registry.sweep()
                if time.monotonic() >= next_expiry:
                    next_expiry = time.monotonic() + self.sweep_interval
                    self.commands.expire()
                    self.roster.refresh_if_due()
            except Exception:
                log.exception("sweep failed")

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.http.close()
        self.broadcasts.close()
        self.hub.close()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=5)
        self.writer.close()
        self.writer.db.close()
        with self._readers_lock:
            for db in self._readers:
                db.close()

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
