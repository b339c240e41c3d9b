"""The MQTT session: paho-mqtt 2.x, version-2 callbacks, birth on every connect.

paho's network thread reconnects with exponential backoff between
``reconnect_min`` and ``reconnect_max``. The will (retained) marks the
device offline when the broker loses it; the birth (retained) marks it
online on every (re)connect.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from node_runtime.config import MqttSettings

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]


class MqttSession:
    """One broker connection with topic handlers and connect/disconnect hooks."""

    def __init__(
        self, client_id: str, settings: MqttSettings, *,
        will: tuple[str, bytes] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ):
        self.settings = settings
        self._handlers: dict[str, Handler] = {}
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self.is_connected = threading.Event()
        protocol = mqtt.MQTTv5 if settings.protocol == 5 else mqtt.MQTTv311
        # A restarted node rebuilds its state from birth and the retained config,
        # so a clean session each time (MQTT 5 clean start is paho's default).
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else True,
        )
        self._client.username_pw_set(settings.username or client_id, settings.password)
        if settings.tls_ca:
            self._client.tls_set(ca_certs=settings.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        # paho's backoff arithmetic works in floats; its hints say int.
        self._client.reconnect_delay_set(settings.reconnect_min,  # type: ignore[arg-type]
                                         settings.reconnect_max)  # type: ignore[arg-type]
        # Never drop a message paho was handed while connected: the outbox
        # holds events anyway, this bounds memory for telemetry bursts.
        self._client.max_queued_messages_set(10_000)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._started = False

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Route messages matching ``topic`` (wildcards allowed) to ``handler``.

        The subscription is renewed on every reconnect.
        """
        self._handlers[topic] = handler
        self._client.message_callback_add(topic, self._dispatch(handler))
        if self.is_connected.is_set():
            self._client.subscribe(topic, qos=1)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Hand a message to paho; False if there is no connection right now."""
        if not self.is_connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def start(self) -> None:
        """Connect in the background; works (and keeps retrying) with no network."""
        s = self.settings
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive)
        self._client.loop_start()
        self._started = True

    def close(self) -> None:
        """Disconnect cleanly (the will is not sent) and stop the network thread."""
        if not self._started:
            return
        self._started = False
        self.is_connected.clear()  # a disconnect we asked for is not worth a warning
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused connection: %s", reason)
            return
        log.info("connected to %s:%s", self.settings.host, self.settings.port)
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # An ack or a rating is one small packet: send it now, not after Nagle's wait.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for topic in self._handlers:
            client.subscribe(topic, qos=1)
        self.is_connected.set()
        if self._on_connect:
            self._on_connect()

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        if self.is_connected.is_set():
            log.warning("disconnected from broker: %s", reason)
        self.is_connected.clear()
        if self._on_disconnect:
            self._on_disconnect()

    @staticmethod
    def _dispatch(handler: Handler) -> Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None]:
        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:  # one bad message must not stop the network thread
                log.exception("handler for %s failed", message.topic)
        return on_message
