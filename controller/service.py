"""The controller service: database, MQTT hub, HTTP API and housekeeping, wired together.

This is the one place that knows every part: it builds each domain service
with exactly the dependencies it needs, hands them to the web app factory,
and runs the background sweeper. Nothing else holds the whole controller.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from typing import Any

from controller.access import audit
from controller.access.sessions import IDLE_S, Sessions
from controller.broadcasts.audio_library import AudioLibrary
from controller.broadcasts.items import Broadcasts
from controller.broadcasts.receipts import store_receipt
from controller.broker import BrokerConfig
from controller.cameras import Cameras, clips
from controller.db.connection import ReaderPool, check_or_set_aside, connect
from controller.db.migrations import migrate
from controller.db.writer import Writer
from controller.fleet import presence, rate_limit
from controller.fleet.bundles import Bundles
from controller.fleet.cards import Cards
from controller.fleet.commands import Commands, store_result
from controller.fleet.desired_config import DesiredConfig, store_applied
from controller.fleet.device_auth import DeviceAuth
from controller.fleet.enrolment import Enrolment
from controller.fleet.hub import Hub
from controller.fleet.ingest import Ingestor
from controller.fleet.metrics import Metrics
from controller.fleet.registry import Registry
from controller.fleet.revocation import Revocation
from controller.fleet.sequence import Sequences
from controller.ratings import alerts as alerts_module
from controller.ratings import cases
from controller.ratings.public_info import PublicInfo
from controller.ratings.roster import Roster
from controller.ratings.screenshots import Screenshots
from controller.ratings.store import EVENT_RATING, EVENT_RATING_DETAIL, RatingStore
from controller.web.app import create_app
from controller.web.auth import TokenCheck
from controller.web.deps import Services
from controller.web.server import HttpServer
from node_runtime.config import MqttSettings
from provisioning.card import DeviceCard
from wire.camera import (
    EVENT_CAMERA_KEY,
    EVENT_CLIP_STATE,
    EVENT_FOOTAGE_HEAD,
    EVENT_HOLD_STATE,
    HOLD_AFTER_S,
    HOLD_BEFORE_S,
)
from wire.messages import EVENT_COMMAND_RESULT, EVENT_CONFIG_APPLIED
from wire.speaker import EVENT_PLAYBACK
from wire.topics import ALERTS

log = logging.getLogger(__name__)

#: Ingestion is "behind" when a write waited longer than this in the writer's queue.
LAG_DEGRADED_S = 5.0
#: ... or when this many tasks wait for the writer.
QUEUE_DEGRADED = 20_000


class Controller:
    """Owns every part of the service; ``start``, then ``close`` (or use ``with``)."""

    def __init__(
        self, db_path: str | pathlib.Path, mqtt: MqttSettings, *,
        http_host: str = "127.0.0.1", http_port: int = 8080, sweep_interval: float = 5.0,
        media_dir: str | pathlib.Path | None = None,
        clips_dir: str | pathlib.Path | None = None, clips_quota: int = clips.QUOTA_BYTES,
        device_site: str | pathlib.Path | None = None,
        hold_before_s: float = HOLD_BEFORE_S, hold_after_s: float = HOLD_AFTER_S,
        broker_passwd: str | pathlib.Path | None = None,
        http_workers: int = 16, readers: int = 8, header_timeout: float = 10.0,
        body_timeout: float = 30.0, session_idle_s: float = IDLE_S,
        device_rate: float = rate_limit.RATE, device_burst: float = rate_limit.BURST,
        http_tls_cert: str | pathlib.Path | None = None,
        http_tls_key: str | pathlib.Path | None = None,
    ):
        self.db_path = pathlib.Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.limiter = rate_limit.RateLimiter(device_rate, device_burst)
        self._anonymous = audit.AnonymousBudget()
        self._stop = threading.Event()
        self.sweep_interval = sweep_interval
        #: Where a corrupt database found at start was moved (reported by health).
        self.set_aside = check_or_set_aside(self.db_path)
        db = connect(self.db_path)
        try:
            self.schema_version = migrate(db)
            self.writer = Writer(db)
            self.readers = ReaderPool(self.db_path, size=readers)
            self.sessions = Sessions(self.writer, idle_s=session_idle_s)
            self.token_check = TokenCheck(self.db_path, self.sessions)
        except Exception:
            db.close()  # a constructor that fails closes what it opened
            raise
        try:
            self._device_site = pathlib.Path(device_site) if device_site else None
            self._build(mqtt, media_dir, broker_passwd)
            self.cameras = Cameras(self.writer, self.readers, self.commands, self.alerts,
                                   clips_dir or self.db_path.parent / "clips",
                                   quota_bytes=clips_quota, hold_before_s=hold_before_s,
                                   hold_after_s=hold_after_s)
            self._attach_cameras()
            self.app = create_app(self._services(), self.token_check, audit=self._audit,
                                  body_timeout=body_timeout)
            # With a certificate and key: HTTPS only (devices send passwords to it).
            self.http = HttpServer(self.app, http_host, http_port, workers=http_workers,
                                   header_timeout=header_timeout, tls_cert=http_tls_cert,
                                   tls_key=http_tls_key)
        except Exception:
            self.readers.close()
            self.token_check.close()
            db.close()
            raise
        self._sweeper = threading.Thread(target=self._sweep, name="sweeper", daemon=True)

    def _build(self, mqtt: MqttSettings, media_dir: str | pathlib.Path | None,
               broker_passwd: str | pathlib.Path | None) -> None:
        """Every domain service, each given only what it needs."""
        self.hub = Hub(mqtt, self.metrics, self.limiter)
        self.registry = Registry(self.writer)
        self.ingestor = Ingestor(self.writer, self.hub.publish_ack, self.metrics,
                                 role_of=self.registry.role_of)
        self.commands = Commands(self.writer, self.hub.publish_command)
        self.desired_config = DesiredConfig(self.writer, self.hub.publish_config)
        self.alerts = alerts_module.Alerts(self.writer, self._publish_alert)
        rating_store = RatingStore([self.alerts.check_pace, cases.open_case, self.alerts.check])
        self.rating_store = rating_store
        self.ingestor.register(EVENT_RATING, rating_store.store)
        self.ingestor.register(EVENT_RATING_DETAIL, rating_store.store_detail)
        self.ingestor.register(EVENT_COMMAND_RESULT, store_result)
        self.ingestor.register(EVENT_CONFIG_APPLIED, store_applied)
        self.ingestor.register(EVENT_PLAYBACK, store_receipt)
        self.audio_library = AudioLibrary(self.writer, media_dir or self.db_path.parent / "audio")
        self.device_auth = DeviceAuth(broker_passwd)
        # The broker's files live together: its accounts' folder is its config's.
        broker = BrokerConfig(pathlib.Path(broker_passwd).parent) if broker_passwd else None
        self.revocation = Revocation(self.registry, broker)
        self.broadcasts = Broadcasts(self.writer, self.readers, self.desired_config)
        self.roster = Roster(self.writer, self.readers, self.desired_config)
        self.cards = Cards(self.registry, broker, imported=self._card_imported)
        self.enrolment = Enrolment(self.cards)
        self.bundles = Bundles(self.cards, self.enrolment, self._device_site)
        self.public_info = PublicInfo(self.writer, self.readers, self.desired_config)
        self.screenshots = Screenshots(self.writer, self.commands)
        self.hub.attach(self.registry, self.ingestor, self.commands)
        self.sequences = Sequences(self.writer)
        self.ingestor.stored_hooks.append(self.sequences.observe)
        self.hub.connected_hooks.append(self.desired_config.republish_all)

    def _card_imported(self, card: DeviceCard) -> None:
        """A device put into service gets its config at once, not at the next refresh."""
        if card.role == "kiosk" and card.desk:
            self.roster.push(card.desk)
        elif card.role == "speaker":
            self.broadcasts.push([card.device_id])

    def _attach_cameras(self) -> None:
        """The desk cameras: a hold after each dissatisfied rating, their events."""
        self.rating_store.hooks.append(self.cameras.hold_for_rating)
        for event_type, handler in ((EVENT_CAMERA_KEY, self.cameras.store_key),
                                    (EVENT_FOOTAGE_HEAD, self.cameras.store_head),
                                    (EVENT_HOLD_STATE, self.cameras.store_hold_state),
                                    (EVENT_CLIP_STATE, self.cameras.store_clip_state)):
            self.ingestor.register(event_type, handler)

    def _services(self) -> Services:
        return Services(
            readers=self.readers, writer=self.writer, registry=self.registry,
            commands=self.commands, desired_config=self.desired_config,
            device_auth=self.device_auth, alerts=self.alerts, roster=self.roster,
            screenshots=self.screenshots, audio_library=self.audio_library,
            broadcasts=self.broadcasts, sessions=self.sessions, revocation=self.revocation,
            health=self.health, public_info=self.public_info, cameras=self.cameras,
            cards=self.cards, enrolment=self.enrolment, bundles=self.bundles)

    def _audit(self, entry: dict[str, object]) -> None:
        """Record a state-changing request through the writer (not waited for); anonymous
        ones within each address's budget, the rest counted."""
        address = entry.get("address")
        if entry.get("user") is None and not self._anonymous.allow(
                str(address) if address else None):
            self.metrics.count("audit_suppressed")
            return
        self.writer.submit(lambda db: audit.record(db, entry))

    def _publish_alert(self, alert: dict[str, object]) -> None:
        self.hub.session.publish(ALERTS, alerts_module.alert_payload(alert), retain=False)

    def reader(self) -> ReaderPool:
        """Reads for tools and tests: ``ctl.reader().execute(sql).fetchone()`` borrows a
        pooled connection for one statement."""
        return self.readers

    @property
    def api_url(self) -> str:
        return self.http.url

    def health(self) -> dict[str, Any]:
        """``ok`` or ``degraded`` with the reasons, and the counters."""
        reasons = []
        if self.writer.last_error is not None:
            at, error = self.writer.last_error
            reasons.append(f"writes failing since {time.strftime('%H:%M:%S', time.localtime(at))}"
                           f": {error}")
        if not self.writer.alive:
            reasons.append("the database writer has stopped")
        if not self.hub.session.is_connected.is_set():
            reasons.append("not connected to the MQTT broker")
        if self.writer.lag_s > LAG_DEGRADED_S or self.writer.queued > QUEUE_DEGRADED:
            reasons.append(f"ingestion behind: {self.writer.queued} writes queued, the last "
                           f"batch waited {self.writer.lag_s:.1f} s")
        if self.set_aside is not None:
            reasons.append(f"the database was corrupt at start and was moved to "
                           f"{self.set_aside}; this one started empty")
        return {"status": "degraded" if reasons else "ok", "reasons": reasons,
                "mqtt_connected": self.hub.session.is_connected.is_set(),
                "schema_version": self.schema_version, **self.metrics.snapshot()}

    def start(self) -> None:
        self.writer.start()
        self.hub.start()
        self.http.start()
        self._sweeper.start()
        self.broadcasts.start()
        self.cameras.start()
        log.info("controller serving %s", self.api_url)

    def _sweep(self) -> None:
        # Liveness is checked in memory four times a second, so a silent device is
        # offline within 1.25 x keepalive + 0.25 s; command expiry needs the database.
        next_expiry = 0.0
        next_leftovers = time.monotonic() + 3600  # the library cleaned up at start
        while not self._stop.wait(0.25):
            try:
                self.registry.sweep()
                if time.monotonic() >= next_expiry:
                    self.desired_config.resync()
                    self.sequences.sweep()
                    next_expiry = time.monotonic() + self.sweep_interval
                    self.commands.expire()
                    self.roster.refresh_if_due()
                    self.public_info.push_all()  # kiosks approved since the last change
                if time.monotonic() >= next_leftovers:
                    next_leftovers = time.monotonic() + 3600
                    self.audio_library.remove_leftovers()
                    self.sessions.prune()
                    self.writer.submit(audit.prune)
                    self.writer.submit(presence.prune)
                    self.cameras.sweep()
            except Exception:
                log.exception("sweep failed")

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.http.close()
        self.broadcasts.close()
        self.cameras.close()
        self.hub.close()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=5)
        self.writer.close()
        self.writer.db.close()
        self.readers.close()
        self.token_check.close()

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
