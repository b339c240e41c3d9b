"""The wire contract shared by the controller and every node.

Pure: topics, message kinds, validation. No I/O, so both sides (and tests)
import it freely. See ``docs/protocol.md``.
"""

from wire.errors import MessageError, ThanthienError, TopicError
from wire.messages import (
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    decode,
    encode,
    new_event,
)
from wire.topics import Topic, device_topic, parse_topic

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "MessageError",
    "ThanthienError",
    "Topic",
    "TopicError",
    "decode",
    "device_topic",
    "encode",
    "new_event",
    "parse_topic",
]
