"""The MQTT session: paho-mqtt 2.x, version-2 callbacks, birth on every connect.

paho's network thread reconnects with exponential backoff between
``reconnect_min`` and ``reconnect_max``. The will (retained) marks the
device offline when the broker loses it; the birth (retained) marks it
online on every (re)connect.

With ``protocol = "auto"`` (the default) the session speaks MQTT 5 and falls
back to MQTT 3.1.1, for the rest of the process, when the broker refuses
version 5: a 3.1.1-only broker answers a version-5 CONNECT with return code 1
(paho reports it as reason 0x84, which a version-5 broker that won't speak 5
sends too), or closes the connection without answering. paho fixes the
protocol when a client is built, so falling back builds a second client.

The session remembers how its link went (:class:`LinkEvent`: the last refused
CONNACK, the last lost connection, how many connects) for the telemetry and
the technician's check (:mod:`node_runtime.diagnose`); :func:`probe_connack`
asks a broker once, without a session, what it says of a device's account.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from node_runtime.config import PROTOCOL_AUTO, MqttSettings

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]

#: CONNACK reason "Unsupported Protocol Version" (paho's reading of a 3.1.1 return code 1).
UNSUPPORTED_PROTOCOL = 0x84
#: Version-5 connections closed before a CONNACK, in a row, that mean "not spoken here".
#: One could be a broker restarting or a link dropping mid-handshake.
CLOSES_BEFORE_FALLBACK = 2
#: Topics whose handler is remembered; past this the memory starts afresh.
MAX_ROUTES = 10_000


@dataclasses.dataclass(frozen=True)
class LinkEvent:
    """A CONNACK or a lost connection as paho reported it; holds no secret."""

    code: int  # the MQTT 5 reason code (paho maps 3.1.1 return codes onto these)
    reason: str  # its name, e.g. "Bad user name or password"
    at: float  # wall-clock time (time.time())


def _event(reason: Any) -> LinkEvent:
    return LinkEvent(int(getattr(reason, "value", reason)), str(reason), time.time())


class MqttSession:
    """One broker connection with topic handlers and connect/disconnect hooks."""

    def __init__(
        self, client_id: str, settings: MqttSettings, *,
        will: tuple[str, bytes] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self._client_id = client_id
        self._will = will
        self._handlers: dict[str, Handler] = {}
        self._routes: dict[str, Handler | None] = {}  # topic -> its handler, as first matched
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.is_connected = threading.Event()
        # Guards swapping in the fallback client against start(), close() and subscribe().
        self._lock = threading.Lock()
        self._answered = False  # the current attempt got a CONNACK
        self._unanswered = 0  # version-5 connections closed before a CONNACK, in a row
        self._retired: list[mqtt.Client] = []  # the client a fallback replaced
        self._started = False
        #: The broker's last refusal (CONNACK), cleared by a successful connect.
        self.last_refusal: LinkEvent | None = None
        #: How the last established connection ended.
        self.last_disconnect: LinkEvent | None = None
        self.connects = 0  # successful connects since start
        self.connected_at: float | None = None  # wall-clock time of the latest one
        self._client = self._build(mqtt.MQTTv311 if settings.protocol == 4 else mqtt.MQTTv5)

    @property
    def protocol(self) -> int:
        """The MQTT protocol level in use: 5, 4 (3.1.1), or 3 (3.1, paho's own downgrade)."""
        return int(self._client.protocol)

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Route messages matching ``topic`` (wildcards allowed) to ``handler``.

        The subscription is renewed on every reconnect.
        """
        with self._lock:  # a client built after this sees the handler; one built before is this
            self._handlers[topic] = handler
            self._routes = {}
            client = self._client
        if self.is_connected.is_set():
            client.subscribe(topic, qos=1)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to paho; False if there is no connection right now."""
        if not self.is_connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def start(self) -> None:
        """Connect in the background; works (and keeps retrying) with no network."""
        with self._lock:
            self._run(self._client)
            self._started = True

    def close(self) -> None:
        """Disconnect cleanly (the will is not sent) and stop the network thread."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            client, retired = self._client, self._retired
        self.is_connected.clear()  # a disconnect we asked for is not worth a warning
        client.disconnect()
        client.loop_stop()
        for old in retired:
            old.loop_stop()  # joins the thread a fallback asked to end

    # -- paho's client -----------------------------------------------------------------

    def _build(self, protocol: MQTTProtocolVersion) -> mqtt.Client:
        """A client with everything set but the connection, speaking ``protocol``."""
        s = self.settings
        # A restarted node rebuilds its state from birth and the retained config,
        # so a clean session each time (MQTT 5 clean start is paho's default).
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else True,
        )
        client.username_pw_set(s.username or self._client_id, s.password)
        if s.tls_ca:
            client.tls_set(ca_certs=s.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        if self._will is not None:
            client.will_set(self._will[0], self._will[1], qos=1, retain=True)
        # paho's backoff arithmetic works in floats; its hints say int.
        client.reconnect_delay_set(s.reconnect_min,  # type: ignore[arg-type]
                                   s.reconnect_max)  # type: ignore[arg-type]
        # Never drop a message paho was handed while connected: the outbox
        # holds events anyway, this bounds memory for telemetry bursts.
        client.max_queued_messages_set(10_000)
        client.on_message = self._message
        client.on_pre_connect = self._connecting
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        return client

    def _run(self, client: mqtt.Client) -> None:
        s = self.settings
        client.connect_async(s.host, s.port, keepalive=s.keepalive)
        client.loop_start()

    def _may_fall_back(self, client: mqtt.Client) -> bool:
        return self.settings.protocol == PROTOCOL_AUTO and client.protocol == mqtt.MQTTv5

    def _fall_back(self, client: mqtt.Client, why: str) -> None:
        """Replace ``client`` by a 3.1.1 one; runs on ``client``'s network thread."""
        with self._lock:
            if client is not self._client or not self._started:
                return  # closing, or already replaced
            log.warning("broker %s:%s refused MQTT 5 (%s): using MQTT 3.1.1 from now on",
                        self.settings.host, self.settings.port, why)
            self._client = self._build(mqtt.MQTTv311)
            self._retired.append(client)
            client.loop_stop()  # on its own thread this only asks it to end; close() joins
            self._run(self._client)

    # -- paho's callbacks (on its network thread) ---------------------------------------

    def _connecting(self, client: mqtt.Client, userdata: Any) -> None:
        if client is self._client:
            self._answered = False

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if client is not self._client:
            return  # the client a fallback replaced, on its way out
        self._answered = True
        self._unanswered = 0
        if reason.is_failure:
            self.last_refusal = _event(reason)
            # Only a refused protocol version falls back: a bad password on
            # 5 is a bad password on 3.1.1 too.
            if reason.value == UNSUPPORTED_PROTOCOL and self._may_fall_back(client):
                self._fall_back(client, str(reason))
            else:
                log.warning("broker refused connection: %s", reason)
            return
        log.info("connected to %s:%s with MQTT %s", self.settings.host, self.settings.port,
                 "5" if client.protocol == mqtt.MQTTv5 else "3.1.1")
        self.last_refusal = None
        self.connects += 1
        self.connected_at = time.time()
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # An ack or a rating is one small packet: send it now, not after Nagle's wait.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for topic in list(self._handlers):
            client.subscribe(topic, qos=1)
        self.is_connected.set()
        if self._on_connect:
            self._on_connect()

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        if client is not self._client:
            return
        if not self._answered and self._started and self._may_fall_back(client):
            self._unanswered += 1
            if self._unanswered >= CLOSES_BEFORE_FALLBACK:
                self._fall_back(client, f"closed {self._unanswered} connections unanswered")
                return  # never connected; and the new client may be by now
        if self.is_connected.is_set():
            log.warning("disconnected from broker: %s", reason)
            self.last_disconnect = _event(reason)
        self.is_connected.clear()
        if self._on_disconnect:
            self._on_disconnect()

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Hand a message to the handler of the first filter its topic matches.

        The match is remembered per topic (one per device and kind here), so the
        controller's hub does not walk paho's topic trie for every event.
        """
        topic = message.topic
        routes = self._routes
        if topic in routes:
            handler = routes[topic]
        else:
            handler = next((h for f, h in list(self._handlers.items())
                            if mqtt.topic_matches_sub(f, topic)), None)
            if len(routes) >= MAX_ROUTES:
                routes.clear()
            routes[topic] = handler
        if handler is None:
            log.debug("no handler for %s", topic)
            return
        try:
            handler(topic, bytes(message.payload))
        except Exception:  # one bad message must not stop the network thread
            log.exception("handler for %s failed", topic)


def probe_connack(client_id: str, settings: MqttSettings,
                  timeout: float = 3.0) -> LinkEvent | None:
    """Connect once, read the broker's CONNACK, say goodbye: what the broker says of this
    account (code 0 is acceptance), or None if no CONNACK came within ``timeout``.

    Raises :class:`OSError` (:class:`ssl.SSLError` included) when no connection is made.
    No will, no subscriptions, no network thread. The broker makes the username the
    client id, so while the device's own node is connected this takes its connection
    over for a moment (the node reconnects at once).
    """
    deadline = time.monotonic() + timeout
    protocols = [mqtt.MQTTv311] if settings.protocol == 4 else [mqtt.MQTTv5]
    if settings.protocol == PROTOCOL_AUTO:
        protocols.append(mqtt.MQTTv311)  # as the session falls back, so does the probe
    answer = None
    for protocol in protocols:
        answer = _ask_once(client_id, settings, protocol, deadline)
        if (answer is not None and answer.code != UNSUPPORTED_PROTOCOL) or (
                time.monotonic() >= deadline):
            break
    return answer


def _ask_once(client_id: str, s: MqttSettings, protocol: MQTTProtocolVersion,
              deadline: float) -> LinkEvent | None:
    answers: list[LinkEvent] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                         clean_session=None if protocol == mqtt.MQTTv5 else True)
    client.username_pw_set(s.username or client_id, s.password)
    if s.tls_ca:
        client.tls_set(ca_certs=s.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
    client.connect_timeout = max(deadline - time.monotonic(), 0.1)
    client.on_connect = lambda c, u, f, reason, p: answers.append(_event(reason))
    try:
        client.connect(s.host, s.port, keepalive=s.keepalive)
        while not answers and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break  # the broker closed the connection
    finally:
        client.disconnect()  # sends DISCONNECT if still open, and closes the socket
        sock = client.socket()
        if sock is not None:
            sock.close()
    return answers[0] if answers else None
