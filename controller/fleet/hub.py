"""The controller's one MQTT subscriber for the whole device tree.

Runs on paho's network thread, so it only decodes, checks and hands work
to the registry and the ingestor (both of which queue for the writer).
Every refusal is logged with its reason and counted.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from controller.fleet.commands import Commands
from controller.fleet.ingest import Ingestor
from controller.fleet.metrics import Metrics
from controller.fleet.rate_limit import Pacer, RateLimiter
from controller.fleet.registry import Registry
from node_runtime.config import MqttSettings
from node_runtime.session import MqttSession
from wire.errors import MessageError, TopicError
from wire.messages import decode, encode
from wire.topics import Topic, device_topic, parse_topic, subscription

log = logging.getLogger(__name__)

CLIENT_ID = "thanthien-controller"


class Hub:
    """Routes device messages; publishes acks, commands and desired configs."""

    def __init__(self, settings: MqttSettings, metrics: Metrics,
                 limiter: RateLimiter | None = None):
        self.metrics = metrics
        self.limiter = limiter or RateLimiter()
        self.pacer: Pacer | None = None
        self._throttled: dict[str, float] = {}  # device -> when last logged; one per account
        #: (topic, reason) -> (when last logged, refusals not logged since): bounded.
        self._refusals: dict[tuple[str, str], tuple[float, int]] = {}
        # MQTT 3.1.1 for the controller's own connection: it uses no MQTT 5 feature,
        # and paho parses MQTT 5 properties of every message in Python (a tenth of
        # the controller's CPU at full ingestion). Devices still speak MQTT 5.
        self.session = MqttSession(CLIENT_ID, dataclasses.replace(settings, protocol=4),
                                   on_connect=self._connected)
        #: Called on every (re)connect, on paho's thread: they must not block.
        self.connected_hooks: list[Callable[[], None]] = []
        self.registry: Registry | None = None
        self.ingestor: Ingestor | None = None
        self.commands: Commands | None = None

    def attach(self, registry: Registry, ingestor: Ingestor, commands: Commands) -> None:
        self.registry, self.ingestor, self.commands = registry, ingestor, commands
        self.pacer = Pacer(self.limiter, ingestor.accept, self.metrics.count)
        self.session.subscribe(subscription(Topic.STATE), self._state)
        self.session.subscribe(subscription(Topic.TELEMETRY), self._telemetry)
        self.session.subscribe(subscription(Topic.EVENTS), self._events)

    def _connected(self) -> None:
        for hook in self.connected_hooks:
            try:
                hook()
            except Exception:
                log.exception("connect hook %r failed", hook)

    def start(self) -> None:
        if self.pacer is not None:
            self.pacer.start()
        self.session.start()

    def close(self) -> None:
        self.session.close()
        if self.pacer is not None:
            self.pacer.close()

    # -- outgoing --------------------------------------------------------------------

    def publish_ack(self, device_id: str, ids: list[str]) -> None:
        self.session.publish(device_topic(device_id, Topic.ACKS), encode(Topic.ACKS, {"ids": ids}))

    def publish_command(self, device_id: str, body: dict[str, Any]) -> bool:
        # Never retained: a retained command would run again on every reconnect.
        return self.session.publish(device_topic(device_id, Topic.COMMANDS),
                                    encode(Topic.COMMANDS, body), retain=False)

    def publish_config(self, device_id: str, version: int, config: dict[str, Any]) -> None:
        self.session.publish(device_topic(device_id, Topic.CONFIG),
                             encode(Topic.CONFIG, {"version": version, "config": config}),
                             retain=True)

    # -- incoming --------------------------------------------------------------------

    def _decode(self, topic: str, payload: bytes, kind: Topic) -> tuple[str, dict[str, Any]] | None:
        try:
            device_id, _ = parse_topic(topic)
            return device_id, decode(kind, payload)
        except (MessageError, TopicError) as exc:
            self._refuse(getattr(exc, "reason", "topic"), topic, str(exc))
            return None

    def _state(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a retained state being cleared
        decoded = self._decode(topic, payload, Topic.STATE)
        if decoded is None or self.registry is None or self.commands is None:
            return
        device_id, state = decoded
        if state["status"] == "online":
            self.registry.birth(device_id, state)
            if self.registry.is_approved(device_id):
                self.commands.resend_open(device_id)
        else:
            self.registry.offline(device_id)

    def _telemetry(self, topic: str, payload: bytes) -> None:
        decoded = self._decode(topic, payload, Topic.TELEMETRY)
        if decoded is None or self.registry is None:
            return
        if not self._within_rate(decoded[0], "telemetry_dropped"):
            return  # the next report replaces it
        self.registry.telemetry(*decoded)

    def _events(self, topic: str, payload: bytes) -> None:
        decoded = self._decode(topic, payload, Topic.EVENTS)
        if decoded is None or self.registry is None or self.ingestor is None:
            return
        device_id, event = decoded
        if not self.registry.is_approved(device_id):
            self._refuse("unknown_device", topic,
                         f"event {event['id']} from {device_id}, which is not approved")
            return
        if event["device"] != device_id:
            self._refuse("device_mismatch", topic,
                         f"event {event['id']} names device {event['device']!r} but came on "
                         f"{device_id}'s topic")
            return
        self.registry.heard(device_id)
        self.metrics.count("events_received")
        assert self.pacer is not None  # made by attach, with the ingestor
        if self.pacer.offer(device_id, event) != "delivered":
            self._throttled_log(device_id)

    def _within_rate(self, device_id: str, counter: str) -> bool:
        """The device's rate limit; over it, count (and log once a minute per device)."""
        if self.limiter.allow(device_id):
            return True
        self.metrics.count(counter)
        self._throttled_log(device_id)
        return False

    def _throttled_log(self, device_id: str) -> None:
        now = time.monotonic()
        if now - self._throttled.get(device_id, -60.0) >= 60.0:
            self._throttled[device_id] = now
            log.warning("device %s is over its rate (%g messages/s, bursts of %g): its events "
                        "are held back and stored at that rate (or left for the node to send "
                        "again), its telemetry dropped", device_id, self.limiter.rate,
                        self.limiter.burst)

    def _refuse(self, reason: str, topic: str, detail: str) -> None:
        """Count every refusal; log the first of each topic and reason, then at most one a
        minute with how many went unlogged (a device sending garbage in a loop must not
        fill the journal)."""
        self.metrics.reject(reason, topic, detail)
        key, now = (topic, reason), time.monotonic()
        last, quiet = self._refusals.get(key, (-60.0, 0))
        if now - last < 60.0:
            self._refusals[key] = (last, quiet + 1)
            return
        if len(self._refusals) >= 10_000:
            self._refusals.clear()
        self._refusals[key] = (now, 0)
        more = f" ({quiet} more like it in the last minute)" if quiet else ""
        log.warning("rejected message on %s (%s): %s%s", topic, reason, detail, more)
