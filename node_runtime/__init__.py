"""The runtime every Pi node shares.

An MQTT session with birth and will, a durable outbox delivered until the
controller acknowledges, command dispatch, desired config, telemetry and
systemd readiness. A role (kiosk, speaker, camera) builds a :class:`Node`
and adds its handlers.
"""

from node_runtime.config import MqttSettings, NodeConfig, load_config
from node_runtime.errors import ConfigError, NodeError, OutboxError
from node_runtime.node import Node
from node_runtime.outbox import Outbox

__all__ = [
    "ConfigError",
    "MqttSettings",
    "Node",
    "NodeConfig",
    "NodeError",
    "Outbox",
    "OutboxError",
    "load_config",
]
